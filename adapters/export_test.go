package adapters

import "github.com/ThreeDotsLabs/watermill/message"

// RawPublisher returns t's publisher without the egress filter that strips
// Levee's control keys: what a plain Watermill service publishes with.
func RawPublisher(t *Transport) message.Publisher { return t.Publisher.(egressPublisher).Publisher }
