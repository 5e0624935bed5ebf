package dlq

// PendingUnswept returns the attempt table's entries without removing the
// expired ones first (Pending does), so a test can see what the traffic
// swept.
func (r *Retrier) PendingUnswept() int { return r.table.len() }
