package fielddev

import "time"

// Item is one scheduled step of a simulated device: F runs at At; Seq
// keeps steps due at the same instant in the order they were scheduled.
type Item[F any] struct {
	At  time.Time
	Seq int
	F   F
}

// Agenda is a simulator's event queue ordered by simulated time; use it
// with container/heap.
type Agenda[F any] []*Item[F]

func (a Agenda[F]) Len() int { return len(a) }
func (a Agenda[F]) Less(i, j int) bool {
	if !a[i].At.Equal(a[j].At) {
		return a[i].At.Before(a[j].At)
	}
	return a[i].Seq < a[j].Seq
}
func (a Agenda[F]) Swap(i, j int) { a[i], a[j] = a[j], a[i] }

// Push adds an *Item[F] (container/heap).
func (a *Agenda[F]) Push(x any) { *a = append(*a, x.(*Item[F])) }

// Pop removes the last item (container/heap).
func (a *Agenda[F]) Pop() any {
	old := *a
	it := old[len(old)-1]
	*a = old[:len(old)-1]
	return it
}
