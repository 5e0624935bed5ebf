package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Kind is the intended fate of a message: what its handler does with it,
// and so what the pipeline must do with it.
type Kind uint8

// The fates a producer assigns.
const (
	// Healthy: the handler succeeds at once. Must be acked after one
	// success, never dead-lettered.
	Healthy Kind = iota + 1
	// Transient: the handler fails transiently on its first K-1 calls and
	// succeeds on call K (K <= max attempts). Must succeed, never be
	// dead-lettered.
	Transient
	// Poison: the handler always fails transiently. Must be dead-lettered
	// exactly once, class exhausted, after exactly max attempts.
	Poison
	// Permanent: the handler returns a permanent error. Dead-lettered
	// once, class permanent, after one attempt.
	Permanent
	// Validation: the payload breaks the topic's schema. Dead-lettered
	// once, class validation, the handler never called.
	Validation
	// Panic: the handler panics. Dead-lettered once, class panic, after
	// one attempt.
	Panic
	// Forged: a transient message (succeeds on call K) whose producer
	// forged Levee's control metadata: a delivery count past max attempts,
	// an hour's retry-after and a far redeliver-at. Must succeed on call K
	// like any transient message: the forged keys are stripped at ingress.
	Forged
)

var kindNames = map[Kind]string{Healthy: "healthy", Transient: "transient", Poison: "poison",
	Permanent: "permanent", Validation: "validation", Panic: "panic", Forged: "forged"}

// Kinds returns every fate, in declaration order.
func Kinds() []Kind { return []Kind{Healthy, Transient, Poison, Permanent, Validation, Panic, Forged} }

// String returns the fate's name as used in plans ("healthy", ...).
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses a fate name.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown fate %q (want healthy, transient, poison, permanent, validation, panic or forged)", ErrPlan, s)
}

// Good reports whether a message of this fate must end processed (acked
// after a successful handler call) and never dead-lettered.
func (k Kind) Good() bool { return k == Healthy || k == Transient || k == Forged }

// DeadClass is the dead-letter class a bad fate must carry ("" for good
// fates).
func (k Kind) DeadClass() string {
	switch k {
	case Poison:
		return "exhausted"
	case Permanent:
		return "permanent"
	case Validation:
		return "validation"
	case Panic:
		return "panic"
	}
	return ""
}

// Fate is one message's intended fate. K is the call on which a Transient
// or Forged message succeeds (>= 1).
type Fate struct {
	Kind Kind
	K    int
}

// String renders the fate ("transient(k=3)").
func (f Fate) String() string {
	if f.Kind == Transient || f.Kind == Forged {
		return fmt.Sprintf("%s(k=%d)", f.Kind, f.K)
	}
	return f.Kind.String()
}

// ExpectedAttempts is how many handler calls a message of this fate gets
// in one generation (one delivery lineage before a replay), when nothing
// else fails: max for a poison message, k for a transient one.
func (f Fate) ExpectedAttempts(maxAttempts int) int {
	switch f.Kind {
	case Healthy, Permanent, Panic:
		return 1
	case Transient, Forged:
		return f.K
	case Poison:
		return maxAttempts
	}
	return 0
}

// Mix is the share of each fate among the messages; shares are
// normalised by their sum.
type Mix map[Kind]float64

// assigner draws fates from a seeded source.
type assigner struct {
	rng         *rand.Rand
	kinds       []Kind
	cum         []float64
	maxAttempts int
}

func newAssigner(seed uint64, mix Mix, maxAttempts int) (*assigner, error) {
	a := &assigner{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), maxAttempts: maxAttempts}
	var kinds []Kind
	for k := range mix {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	sum := 0.0
	for _, k := range kinds {
		if mix[k] < 0 {
			return nil, fmt.Errorf("%w: fate %s has a negative share", ErrPlan, k)
		}
		if mix[k] == 0 {
			continue
		}
		sum += mix[k]
		a.kinds = append(a.kinds, k)
		a.cum = append(a.cum, sum)
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: the fate mix is empty", ErrPlan)
	}
	for i := range a.cum {
		a.cum[i] /= sum
	}
	if maxAttempts < 2 && (mix[Transient] > 0 || mix[Forged] > 0) {
		return nil, fmt.Errorf("%w: transient fates need max_attempts >= 2 (have %d)", ErrPlan, maxAttempts)
	}
	return a, nil
}

// next draws one fate.
func (a *assigner) next() Fate {
	x := a.rng.Float64()
	k := a.kinds[len(a.kinds)-1]
	for i, c := range a.cum {
		if x < c {
			k = a.kinds[i]
			break
		}
	}
	f := Fate{Kind: k}
	if k == Transient || k == Forged {
		f.K = 2 + a.rng.IntN(a.maxAttempts-1) // 2..max
	}
	return f
}

// float draws a number in [0,1) from the same source.
func (a *assigner) float() float64 { return a.rng.Float64() }
