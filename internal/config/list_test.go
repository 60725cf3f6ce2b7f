package config

import (
	"flag"
	"reflect"
	"testing"
)

func TestList(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--bind", "a"}, []string{"a"}},
		{[]string{"--bind", "a, b,,c "}, []string{"a", "b", "c"}},
		{[]string{"--bind", "a", "--bind", "b,c"}, []string{"a", "b", "c"}},
		{[]string{"--bind", ","}, nil},
	}
	for _, tc := range tests {
		var got []string
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Var(List{&got}, "bind", "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.args, got, tc.want)
		}
		if s := (List{&got}).String(); s != joinComma(tc.want) {
			t.Errorf("%q: String() = %q", tc.args, s)
		}
	}
	if (List{}).String() != "" {
		t.Error("String of a nil List is not empty")
	}
}

func joinComma(v []string) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}
