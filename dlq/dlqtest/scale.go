package dlqtest

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// ScaleLetters yields n letters in groups failure groups for benchmarks
// at scale, the same on every call: group sizes follow a Zipf law (of
// 200,000 letters in 5,000 groups, 4,979 groups get letters and the
// largest 9,533), failures spread over the week before Base (one in a
// thousand in its last 5 minutes), one letter in ten replayed and one in
// ten archived; 20 topics, 30 handlers. The letters are small (no payload
// to speak of), so seeding costs the indexes, not the bytes; a caller
// holds only what it keeps of them.
func ScaleLetters(n, groups int) iter.Seq[dlqops.Record] {
	return func(yield func(dlqops.Record) bool) {
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 4, uint64(groups-1))
		for i := range n {
			g := int(z.Uint64())
			ago := time.Duration(r.Int64N(int64(7 * 24 * time.Hour)))
			if i%1000 == 0 {
				ago = time.Duration(r.Int64N(int64(5 * time.Minute)))
			}
			dl := Letter(fmt.Sprintf("s-%07d", i), fmt.Sprintf("fp-%06d", g), fmt.Sprintf("topic-%02d", g%20),
				fmt.Sprintf("handler-%02d", g%30), -ago.Truncate(time.Microsecond))
			dl.Metadata = map[string]string{"k": "v"}
			dl.Payload = []byte("{}")
			switch i % 10 {
			case 3:
				dl.Status = dlqops.StatusReplayed
			case 7:
				dl.Status = dlqops.StatusArchived
			}
			if !yield(dl) {
				return
			}
		}
	}
}
