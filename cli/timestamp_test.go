package cli

import (
	"testing"
	"time"
)

func TestParseSourceDate(t *testing.T) {
	t.Parallel()
	i := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name          string
		flag          *int64
		buildArg, env string
		want          int64 // -1: nil
		wantErr       bool
	}{
		{name: "none", want: -1},
		{name: "flag", flag: i(1700000000), buildArg: "5", env: "6", want: 1700000000},
		{name: "flag zero", flag: i(0), env: "6", want: 0},
		{name: "build arg over env", buildArg: "5", env: "6", want: 5},
		{name: "env", env: "1700000000", want: 1700000000},
		{name: "empty env is unset", env: "", want: -1},
		{name: "not a number", env: "yesterday", wantErr: true},
		{name: "fraction", buildArg: "1.5", wantErr: true},
		{name: "negative", flag: i(-1), wantErr: true},
		{name: "past year 9999", env: "253402300800", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSourceDate(tc.flag, tc.buildArg, tc.env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			switch {
			case tc.wantErr:
			case tc.want < 0 && got != nil:
				t.Errorf("got %v, want none", got)
			case tc.want >= 0 && (got == nil || !got.Equal(time.Unix(tc.want, 0)) || got.Location() != time.UTC):
				t.Errorf("got %v, want %v UTC", got, time.Unix(tc.want, 0).UTC())
			}
		})
	}
}
