package tests

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

const busyboxName = "docker.io/library/busybox:latest"

// TestPullImagesTagInspectRmi pulls by short name through the registries.conf
// mirror and checks that images, tag, inspect and rmi tell the same story.
func TestPullImagesTagInspectRmi(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	want := wantFixture(t)
	r := s.run(t, "pull", "busybox")
	if r.code != 0 {
		t.Fatalf("pull by short name through the mirror: %v", r)
	}
	id := onlyImageID(t, r)
	if "sha256:"+id != want.ConfigDigest {
		t.Errorf("image ID %s, want the config digest %s", id, want.ConfigDigest)
	}
	if !strings.Contains(r.stderr, "Copying blob") {
		t.Errorf("want progress (Copying blob ...) on stderr, got %q", r.stderr)
	}
	checkListed(t, s, id, []string{busyboxName}, want.ManifestDigest)

	s.must(t, "tag", "busybox", "mybox:1")
	checkListed(t, s, id, []string{busyboxName, "localhost/mybox:1"}, want.ManifestDigest)
	checkInspect(t, s, "localhost/mybox:1", id, want)
	for _, name := range []string{"busybox", "mybox:1", id, id[:12]} {
		if got := strings.TrimSpace(s.must(t, "inspect", "--format", "{{.ID}}", name)); got != id {
			t.Errorf("inspect --format {{.ID}} %s = %q, want %s", name, got, id)
		}
	}

	r = s.run(t, "rmi", "localhost/mybox:1")
	if r.code != 0 || !strings.Contains(r.stdout, "untagged:") || !strings.Contains(r.stdout, "mybox:1") || strings.Contains(r.stdout, id[:12]) {
		t.Errorf("rmi of one of two names must only untag it (untagged: NAME): %v", r)
	}
	checkListed(t, s, id, []string{busyboxName}, want.ManifestDigest)

	r = s.run(t, "rmi", "busybox")
	if r.code != 0 || !strings.Contains(r.stdout, id[:12]) {
		t.Errorf("rmi of the last name must remove the image and print its ID: %v", r)
	}
	if entries := s.images(t); len(entries) != 0 {
		t.Errorf("after rmi, images --json lists %v", entries)
	}
	if out := s.must(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("after rmi, images -q prints %q", out)
	}
	oneLineError(t, s.run(t, "inspect", "busybox"), "not found", "unknown", "no such", "not known")
	oneLineError(t, s.run(t, "rmi", "busybox"), "not found", "unknown", "no such", "not known")
}

// checkListed checks that every form of `forge images` shows exactly one image, id, with names.
func checkListed(t *testing.T, s *store, id string, names []string, digest string) {
	t.Helper()
	entries := s.images(t)
	if len(entries) != 1 || entries[0].ID != id {
		t.Fatalf("images --json: want one image %s, got %+v", id, entries)
	}
	got := slices.Sorted(slices.Values(entries[0].Names))
	if !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		t.Errorf("images --json names %q, want %q", got, names)
	}
	if entries[0].Digest != digest || entries[0].Size <= 0 {
		t.Errorf("images --json digest %q size %d, want digest %s and a size", entries[0].Digest, entries[0].Size, digest)
	}

	table := lines(s.must(t, "images"))
	if len(table) == 0 || strings.Join(strings.Fields(table[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Fatalf("images: want the header REPOSITORY TAG IMAGE ID CREATED SIZE, got %q", table)
	}
	for _, name := range names {
		repo, tag := name[:strings.LastIndex(name, ":")], name[strings.LastIndex(name, ":")+1:]
		if !slices.ContainsFunc(table, func(l string) bool {
			f := strings.Fields(l)
			return len(f) >= 3 && f[0] == repo && f[1] == tag && f[2] == id[:12]
		}) {
			t.Errorf("images: no row %s %s %s in %q", repo, tag, id[:12], table)
		}
	}
	for _, flag := range []string{"-n", "--noheading"} {
		noHeading := lines(s.must(t, "images", flag))
		if !slices.Equal(noHeading, table[1:]) {
			t.Errorf("images %s: want the table without its header, got %q", flag, noHeading)
		}
	}
	if q := lines(s.must(t, "images", "-q")); !slices.Equal(q, []string{id[:12]}) {
		t.Errorf("images -q = %q, want [%s]", q, id[:12])
	}
	q := lines(s.must(t, "images", "--quiet", "--no-trunc"))
	if len(q) != 1 || strings.TrimPrefix(q[0], "sha256:") != id {
		t.Errorf("images --quiet --no-trunc = %q, want [%s]", q, id)
	}
}

// checkInspect checks inspect's JSON and --format against the fixture.
func checkInspect(t *testing.T, s *store, name, id string, want fixture) {
	t.Helper()
	var doc struct {
		ID           string
		Names        []string
		Digest       string
		Size         int64
		Config       imageConfig
		Manifest     manifest
		ManifestType string
	}
	out := s.must(t, "inspect", name)
	decodeJSON(t, "inspect", out, &doc)
	checkKeys(t, "inspect", []byte(out), "ID", "Names", "Digest", "Created", "Size", "Config", "Manifest", "ManifestType")
	if doc.ID != id || !slices.Contains(doc.Names, name) || !slices.Contains(doc.Names, busyboxName) {
		t.Errorf("inspect %s: ID %s names %q, want %s with %s and %s", name, doc.ID, doc.Names, id, name, busyboxName)
	}
	if doc.Digest != want.ManifestDigest || doc.ManifestType == "" || doc.Size <= 0 {
		t.Errorf("inspect %s: Digest %q ManifestType %q Size %d, want digest %s", name, doc.Digest, doc.ManifestType, doc.Size, want.ManifestDigest)
	}
	if !slices.Equal(doc.Config.Config.Cmd, []string{"sh"}) || !slices.Equal(doc.Config.RootFS.DiffIDs, want.DiffIDs) ||
		!slices.ContainsFunc(doc.Config.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		t.Errorf("inspect %s: Config %+v, want Cmd [sh], PATH and diff IDs %v", name, doc.Config, want.DiffIDs)
	}
	if len(doc.Manifest.Layers) != 1 || doc.Manifest.Config.Digest != want.ConfigDigest {
		t.Errorf("inspect %s: Manifest %+v, want one layer and config %s", name, doc.Manifest, want.ConfigDigest)
	}
	for format, wantOut := range map[string]string{
		"{{.ID}}":                            id,
		"{{.Digest}}":                        want.ManifestDigest,
		"{{.Config.Config.Cmd}}":             "[sh]",
		"{{index .Config.RootFS.DiffIDs 0}}": want.DiffIDs[0],
	} {
		if got := strings.TrimSpace(s.must(t, "inspect", "--format", format, name)); got != wantOut {
			t.Errorf("inspect --format %q = %q, want %q", format, got, wantOut)
		}
	}
}

// TestInfoAndVersion checks what forge reports about itself for a full ID map.
func TestInfoAndVersion(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	r := s.run(t, "info")
	if r.code != 0 {
		t.Fatalf("info: %v", r)
	}
	var info struct {
		Store struct{ GraphDriverName, GraphDriverReason, GraphRoot, RunRoot string }
		IDMap struct {
			Mode, Reason   string
			UIDMap, GIDMap json.RawMessage
		}
		Version any
	}
	decodeJSON(t, "info", r.stdout, &info)
	var parts struct{ Store, IDMap json.RawMessage }
	decodeJSON(t, "info", r.stdout, &parts)
	checkKeys(t, "info", []byte(r.stdout), "store", "idmap", "version")
	checkKeys(t, "info store", parts.Store, "GraphDriverName", "GraphDriverReason", "GraphRoot", "RunRoot")
	checkKeys(t, "info idmap", parts.IDMap, "mode", "reason", "uidMap", "gidMap")
	if !slices.Contains([]string{"overlay", "fuse-overlayfs", "vfs"}, info.Store.GraphDriverName) || info.Store.GraphDriverReason == "" {
		t.Errorf("info: driver %q reason %q, want overlay, fuse-overlayfs or vfs and why", info.Store.GraphDriverName, info.Store.GraphDriverReason)
	}
	if info.Store.GraphRoot != s.root || info.Store.RunRoot != s.runroot {
		t.Errorf("info: GraphRoot %q RunRoot %q, want --root %s and --runroot %s", info.Store.GraphRoot, info.Store.RunRoot, s.root, s.runroot)
	}
	if info.IDMap.Mode != "full" || len(info.IDMap.UIDMap) < 3 || len(info.IDMap.GIDMap) < 3 {
		t.Errorf("info: idmap %+v, want mode full with the maps (newuidmap and /etc/subuid are there)", info.IDMap)
	}
	if info.Version == nil {
		t.Errorf("info: no version in %s", r.stdout)
	}
	if strings.Contains(r.stderr, "only your own UID is mapped") {
		t.Errorf("info warns about the single-ID map with newuidmap present: %s", r.stderr)
	}

	v := s.run(t, "version")
	if v.code != 0 || !strings.HasPrefix(v.stdout, "forge version ") || !strings.Contains(v.stdout, "go1.") {
		t.Errorf("version: want `forge version X` and the Go version, got %v", v)
	}
}
