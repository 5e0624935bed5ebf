package main

import (
	"fmt"
	"io"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dedup"
)

// keyOrderRef is the metadata key inventory's dedup section reads the
// identity from (levee.yaml: dedup.key.metadata): the run and the order
// id, so a copy of a reserve request published with a new UUID is the same
// order, and a later run's orders (same ids) are new ones.
const keyOrderRef = "order_ref"

// dedupStore returns the store of the dedup sections with `store: shared`:
// the PostgreSQL inbox with -postgres (its marks commit with the inventory
// rows), else a memory store.
func (d *demo) dedupStore() (dedup.Store, error) {
	if d.pg != nil {
		return d.pg.inbox, nil
	}
	return dedup.NewMemStore(dedup.DefaultMaxKeys)
}

// orderRef is the value of keyOrderRef for order id in this run.
func (d *demo) orderRef(id string) string {
	return fmt.Sprintf("%x/%s", d.start.UnixNano(), id)
}

// publishReserve publishes out to inventory and, for every -duplicates-th
// order, a copy with a new UUID, as a producer's retry after a lost
// publish confirm would: inventory's dedup drops it.
func (d *demo) publishReserve(topic string, out *message.Message) error {
	if err := d.pub.Publish(topic, out); err != nil {
		return err
	}
	if n := d.o.duplicates; n <= 0 || d.reserves.Add(1)%int64(n) != 0 {
		return nil
	}
	cp := out.Copy()
	cp.UUID = watermill.NewUUID()
	cp.SetContext(out.Context())
	if err := d.pub.Publish(topic, cp); err != nil {
		return err
	}
	d.copies.Add(1)
	return nil
}

// copiesDropped reports whether inventory's dedup dropped as many
// duplicates as copies were published (each copy, or its original, is
// dropped once).
func (d *demo) copiesDropped() bool {
	dd, ok := d.applied.Dedup("inventory")
	return !ok || dd.Stats().Duplicates >= uint64(d.copies.Load())
}

// reportDedup writes the demo line on duplicates: the copies published on
// purpose and what inventory's dedup dropped (every copy, plus any
// redelivery of an order already written).
func (d *demo) reportDedup(out io.Writer) {
	dd, ok := d.applied.Dedup("inventory")
	if !ok {
		return
	}
	st := dd.Stats()
	fmt.Fprintf(out, "inventory dedup: %d duplicates dropped without running the handler (%d reserve requests published twice), %d deferred while in progress\n",
		st.Duplicates, d.copies.Load(), st.Waited)
}
