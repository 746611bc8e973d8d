package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"github.com/townlink/townlink/gateway/config"
)

// exprGen writes random expressions over a_kw, b_v (numbers), door (a
// bool), name (text), prev.<point>, dt, hour, minute and weekday, mostly
// in what compileFast covers, sometimes not (calls, %, text, ?:).
type exprGen struct{ r *rand.Rand }

func (g exprGen) num(depth int) string {
	if depth <= 0 || g.r.IntN(3) == 0 {
		leaves := []string{"a_kw", "b_v", "prev.a_kw", `prev["b_v"]`, "prev.door", "dt", "hour", "minute", "weekday",
			"0", "1", "2", "1000", "-3", "0.5", "1e300", "2.5e-3", "9007199254740993"}
		return leaves[g.r.IntN(len(leaves))]
	}
	switch g.r.IntN(12) {
	case 0:
		return "-" + g.num(depth-1)
	case 1:
		return "abs(" + g.num(depth-1) + ")"
	case 2:
		return "(" + g.num(depth-1) + " % 3)"
	case 3:
		return "(" + g.boolean(depth-1) + " ? " + g.num(depth-1) + " : " + g.num(depth-1) + ")"
	}
	ops := []string{"+", "-", "*", "/", "**", "^"}
	return "(" + g.num(depth-1) + " " + ops[g.r.IntN(len(ops))] + " " + g.num(depth-1) + ")"
}

func (g exprGen) boolean(depth int) string {
	if depth <= 0 || g.r.IntN(4) == 0 {
		return []string{"door", "true", "false", `name == "x"`}[g.r.IntN(4)]
	}
	switch g.r.IntN(8) {
	case 0:
		return "!" + g.boolean(depth-1)
	case 1:
		return "not " + g.boolean(depth-1)
	case 2:
		ops := []string{"&&", "||", "and", "or", "==", "!="}
		return "(" + g.boolean(depth-1) + " " + ops[g.r.IntN(len(ops))] + " " + g.boolean(depth-1) + ")"
	}
	ops := []string{"<", "<=", ">", ">=", "==", "!="}
	return "(" + g.num(depth-1) + " " + ops[g.r.IntN(len(ops))] + " " + g.num(depth-1) + ")"
}

// TestFastExprMatchesVM holds compileFast's closures and expr's VM side by
// side: on random expressions and values, the same result.
func TestFastExprMatchesVM(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 7))
	g := exprGen{r}
	env0 := config.ExprEnv([]string{"a_kw", "b_v", "door", "name"}, []string{"name"}, []string{"door"})
	floats := []float64{0, 1, -1, 2, 3, 0.5, -2.5, 1000, 1e6, -1e6, 1e300, math.SmallestNonzeroFloat64, 9007199254740992}
	var valid, fast, compared int
	for range 3000 {
		src := g.boolean(4)
		p, err := expr.Compile(src, config.ExprOptions(env0)...)
		if err != nil { // the generator does not mind types (% of floats, ...)
			continue
		}
		valid++
		fx := compileFast(p)
		if fx == nil {
			continue
		}
		fast++
		for range 20 {
			env := map[string]any{}
			for k, v := range env0 {
				env[k] = v
			}
			env["a_kw"], env["b_v"] = floats[r.IntN(len(floats))], floats[r.IntN(len(floats))]
			env["prev.a_kw"], env["prev.b_v"] = floats[r.IntN(len(floats))], floats[r.IntN(len(floats))]
			env["door"], env["prev.door"] = r.IntN(2) == 0, float64(r.IntN(2))
			env["dt"], env["hour"], env["minute"], env["weekday"] = floats[r.IntN(len(floats))], r.IntN(24), r.IntN(60), r.IntN(7)
			want, err := expr.Run(p, env)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			if got := fx.run(slotsOf(t, fx, env)); got != want {
				t.Fatalf("%s with %s: fast %v, VM %v", src, describe(env), got, want)
			}
			compared++
		}
	}
	// Most of the generator's expressions are in what compileFast covers.
	if valid < 2000 || fast < valid/2 {
		t.Errorf("%d of 3000 expressions valid, %d of them compiled fast", valid, fast)
	}
	t.Logf("%d of 3000 expressions valid, %d of them compiled fast, %d runs compared", valid, fast, compared)
}

// slotsOf fills fx's slots from env as the engine does from a device.
func slotsOf(t *testing.T, fx *fastExpr, env map[string]any) []float64 {
	s := make([]float64, len(fx.names))
	for i, n := range fx.names {
		switch v := env[n].(type) {
		case float64:
			s[i] = v
		case int:
			s[i] = float64(v)
		case bool:
			if v {
				s[i] = 1
			}
		default:
			t.Fatalf("slot %s is a %T", n, v)
		}
	}
	return s
}

func describe(env map[string]any) string {
	var b strings.Builder
	for _, k := range []string{"a_kw", "b_v", "door", "prev.a_kw", "prev.b_v", "prev.door", "dt", "hour", "minute", "weekday"} {
		fmt.Fprintf(&b, "%s=%v ", k, env[k])
	}
	return b.String()
}

// What compileFast leaves to the VM.
func TestFastExprLeavesToTheVM(t *testing.T) {
	env := config.ExprEnv([]string{"a_kw", "name"}, []string{"name"}, nil)
	for _, src := range []string{
		`name == "x"`,            // text
		`abs(a_kw) > 1`,          // a call
		`hour % 2 == 0`,          // int arithmetic (%)
		`hour * 60 + minute > 1`, // int arithmetic that wraps in expr
		`a_kw > 1 ? true : false`,
		`device == "m1"`,
		`prev[name] > 1`, // a member looked up at run time
	} {
		p, err := expr.Compile(src, config.ExprOptions(env)...)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if compileFast(p) != nil {
			t.Errorf("%s compiled fast", src)
		}
	}
}

// FuzzFastExprMatchesVM: any expression expr accepts and compileFast
// covers gives the VM's result, for any values.
func FuzzFastExprMatchesVM(f *testing.F) {
	f.Add("a_kw - prev.a_kw > 15 && dt < 60", 1.5, 2.0, 3)
	f.Add("not (hour >= 2) and b_v > prev.b_v * 1.5 or minute == 7", 0.0, -1e300, 7)
	f.Add("door == (a_kw ** 2 ^ 0.5 <= -b_v / 0)", 9007199254740993.0, 0.5, 23)
	env0 := config.ExprEnv([]string{"a_kw", "b_v", "door", "name"}, []string{"name"}, []string{"door"})
	f.Fuzz(func(t *testing.T, src string, a, b float64, h int) {
		p, err := expr.Compile(src, config.ExprOptions(env0)...)
		if err != nil {
			return
		}
		fx := compileFast(p)
		if fx == nil {
			return
		}
		env := map[string]any{}
		for k, v := range env0 {
			env[k] = v
		}
		env["a_kw"], env["b_v"], env["prev.a_kw"], env["prev.b_v"], env["dt"] = a, b, b, a, a-b
		env["door"], env["prev.door"] = h%2 == 0, float64(h&1)
		env["hour"], env["minute"], env["weekday"] = h%24, h%60, h%7
		want, err := expr.Run(p, env) // no run-time error in what compileFast covers
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := fx.run(slotsOf(t, fx, env)); got != want {
			t.Fatalf("%s with %s: fast %v, VM %v", src, describe(env), got, want)
		}
	})
}
