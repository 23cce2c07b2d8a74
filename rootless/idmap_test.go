package rootless

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadSubIDRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string // "" with noFile: the file does not exist
		noFile  bool
		user    string
		uid     int
		want    subIDRange
		found   bool
	}{
		{name: "by name", content: "alice:100000:65536\n", user: "alice", uid: 1000, want: subIDRange{100000, 65536}, found: true},
		{name: "by uid", content: "1000:300000:65536\n", user: "alice", uid: 1000, want: subIDRange{300000, 65536}, found: true},
		{name: "by uid without a name", content: "1000:300000:65536\n", uid: 1000, want: subIDRange{300000, 65536}, found: true},
		{name: "other users only", content: "bob:100000:65536\n1001:165536:65536\n", user: "alice", uid: 1000},
		{name: "comments and blank lines", content: "# alice:1:2\n\n   \nalice:200000:1000\n", user: "alice", uid: 1000, want: subIDRange{200000, 1000}, found: true},
		{name: "surrounding spaces", content: "  alice:200000:1000  \n", user: "alice", uid: 1000, want: subIDRange{200000, 1000}, found: true},
		{
			name: "malformed lines skipped",
			content: strings.Join([]string{
				"alice", "alice:1", "alice:x:10", "alice:10:y", "alice:10:0", "alice:-1:10",
				"alice:1:2:3", ":1:2", "alice:4294967295:2", "alice:500000:10",
			}, "\n"),
			user: "alice", uid: 1000, want: subIDRange{500000, 10}, found: true,
		},
		{name: "first of several ranges", content: "alice:100000:65536\nalice:300000:65536\n", user: "alice", uid: 1000, want: subIDRange{100000, 65536}, found: true},
		{name: "uid line before name line", content: "1000:400000:10\nalice:100000:65536\n", user: "alice", uid: 1000, want: subIDRange{400000, 10}, found: true},
		{name: "name is not a prefix match", content: "alice2:100000:65536\n", user: "alice", uid: 1000},
		{name: "empty name matches no empty owner", content: ":100000:65536\n", uid: 1000},
		{name: "largest range", content: "alice:1:4294967295\n", user: "alice", uid: 1000, want: subIDRange{1, 4294967295}, found: true},
		{name: "empty file", content: "", user: "alice", uid: 1000},
		{name: "missing file", noFile: true, user: "alice", uid: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "subuid")
			if !tt.noFile {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, found, err := readSubIDRange(path, tt.user, tt.uid)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.found || got != tt.want {
				t.Errorf("readSubIDRange = %+v, %v; want %+v, %v", got, found, tt.want, tt.found)
			}
		})
	}
}

func TestReadSubIDRangeUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // a directory: opening works, reading fails
	if _, _, err := readSubIDRange(dir, "alice", 1000); err == nil {
		t.Fatal("reading a directory as /etc/subuid: no error")
	}
}

func TestReadIDMap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []IDMap
		wantErr bool
	}{
		{name: "host", content: "         0          0 4294967295\n", want: []IDMap{{0, 0, 4294967295}}},
		{name: "single", content: "         0       1001          1\n", want: []IDMap{{0, 1001, 1}}},
		{
			name:    "full",
			content: "         0       1001          1\n         1     200000      65536\n",
			want:    []IDMap{{0, 1001, 1}, {1, 200000, 65536}},
		},
		{name: "unmapped namespace", content: "", want: nil},
		{name: "blank line", content: "0 1001 1\n\n", want: []IDMap{{0, 1001, 1}}},
		{name: "two fields", content: "0 1001\n", wantErr: true},
		{name: "not a number", content: "0 x 1\n", wantErr: true},
		{name: "negative", content: "0 -1 1\n", wantErr: true},
		{name: "too large", content: "0 4294967296 1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "uid_map")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readIDMap(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("readIDMap error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readIDMap = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadIDMapSelf(t *testing.T) {
	t.Parallel()
	m, err := readIDMap("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := toHost(m, os.Getuid()); !ok {
		t.Errorf("own uid %d is not in own uid_map %+v", os.Getuid(), m)
	}
}

func TestIDMapHelpers(t *testing.T) {
	t.Parallel()
	full := []IDMap{{0, 1001, 1}, {1, 200000, 65536}}
	tests := []struct {
		id, want int
		ok       bool
	}{
		{0, 1001, true}, {1, 200000, true}, {1000, 200999, true}, {65536, 265535, true}, {65537, 0, false},
	}
	for _, tt := range tests {
		if got, ok := toHost(full, tt.id); got != tt.want || ok != tt.ok {
			t.Errorf("toHost(%d) = %d, %v; want %d, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
	if !isIdentity([]IDMap{{0, 0, 4294967295}}) || isIdentity(full) || isIdentity(nil) {
		t.Error("isIdentity misjudges a map")
	}
}
