package cli

import "testing"

func TestParseSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "4MiB": 4 << 20, "16GiB": 16 << 30, "2g": 2 << 30, "512k": 512 << 10} {
		if got, err := parseSize("max-layer-size", in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "4 XB"} {
		if _, err := parseSize("max-layer-size", in); err == nil {
			t.Errorf("parseSize(%q): want an error", in)
		}
	}
}
