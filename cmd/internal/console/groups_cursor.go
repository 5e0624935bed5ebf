package console

import (
	"net/url"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// The parameters of a groups page's cursor: the last group of the
// previous page, its count (order count) or newest failure (order
// newest, RFC 3339 with nanoseconds), and its key.
const (
	paramAfter    = "after"
	paramAfterKey = "after_key"
)

// parseGroupCursor returns the cursor of q for order, nil when q has
// none, or an error for a malformed one.
func parseGroupCursor(q url.Values, order dlqops.GroupOrder) (*dlqops.GroupCursor, error) {
	at, ok := q[paramAfter]
	if !ok {
		return nil, nil
	}
	c := &dlqops.GroupCursor{Key: q.Get(paramAfterKey)}
	var err error
	if order == dlqops.GroupsByNewest {
		c.LastSeen, err = time.Parse(time.RFC3339Nano, at[0])
	} else if c.Count, err = strconv.Atoi(at[0]); err == nil && c.Count < 0 {
		err = strconv.ErrRange
	}
	if err != nil {
		return nil, errBadInput("a malformed groups cursor (after=" + at[0] + ")")
	}
	return c, nil
}

// setGroupCursor sets c (nil: none) in v for order.
func setGroupCursor(v url.Values, order dlqops.GroupOrder, c *dlqops.GroupCursor) {
	if c == nil {
		return
	}
	if order == dlqops.GroupsByNewest {
		v.Set(paramAfter, c.LastSeen.UTC().Format(time.RFC3339Nano))
	} else {
		v.Set(paramAfter, strconv.Itoa(c.Count))
	}
	v.Set(paramAfterKey, c.Key)
}
