package dlqops_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestPreviewPruneCountsWithoutGroups: on a store that sums groups, the
// preview of a max count reads no group (it counts the letters kept with
// one sum), and the preview is what it is from every group.
func TestPreviewPruneCountsWithoutGroups(t *testing.T) {
	s, now := manyGroups(t)
	ctx := context.Background()
	for _, r := range []dlqops.Retention{{MaxCount: 100}, {MaxCount: 1000}, {MaxAge: 50 * time.Minute}, {MaxAge: 50 * time.Minute, MaxCount: 100}} {
		t.Run(fmt.Sprintf("%+v", r), func(t *testing.T) {
			want, err := dlqops.PreviewPrune(ctx, &readCounter{Store: s}, r, now)
			if err != nil {
				t.Fatal(err)
			}
			summed := summingCounter{readCounter: &readCounter{Store: s}, sum: s}
			got, err := dlqops.PreviewPrune(ctx, summed, r, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("summed store: got %+v\nwant (every group read) %+v", got, want)
			}
			if r.MaxCount == 100 && want.OverCount == 0 {
				t.Errorf("the store holds 100 letters or fewer: the case tests nothing (%+v)", want)
			}
			aged := 0
			if r.MaxAge > 0 {
				aged = len(want.ByAge) // the groups it shows
			}
			read := 0
			for _, n := range summed.reads {
				read += n
			}
			if read != aged {
				t.Errorf("read %d groups to show %d (store calls: %v)", read, aged, summed.reads)
			}
		})
	}
}
