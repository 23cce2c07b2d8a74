package storage

import (
	"context"
	"encoding/json"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// TestPushedLayers: a layer the repository accepted is answered for by its uncompressed
// digest, as the compressed blob it was pushed as, in pushes to that repository only.
func TestPushedLayers(t *testing.T) {
	diffIDs := []digest.Digest{digest.FromString("layer 1"), digest.FromString("layer 2"), digest.FromString("layer 3")}
	blobs := []imgspecv1.Descriptor{
		{MediaType: imgspecv1.MediaTypeImageLayerGzip, Digest: digest.FromString("gz 1"), Size: 11},
		{MediaType: imgspecv1.MediaTypeImageLayerZstd, Digest: digest.FromString("zst 2"), Size: 22},
		{MediaType: imgspecv1.MediaTypeImageLayer, Digest: diffIDs[2], Size: 33}, // uncompressed: not recorded
	}
	raw, err := json.Marshal(imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, Layers: blobs,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: digest.FromString("config"), Size: 5}})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPushedLayers("docker://127.0.0.1:5000/team/cache")
	p.note(raw, imgspecv1.MediaTypeImageManifest, diffIDs[:2]) // a count that does not match: nothing
	if _, ok := p.lookup(diffIDs[0]); ok {
		t.Fatal("layers recorded from a manifest whose layer count differs from the diff IDs'")
	}
	p.note(raw, imgspecv1.MediaTypeImageManifest, diffIDs)

	ref, err := alltransports.ParseImageName("docker://127.0.0.1:5000/team/cache:abc")
	if err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{}
	if !p.applies(ref, sys, "", &cstorage.Image{}) {
		t.Fatal("a push to the recorded repository does not reuse its layers")
	}
	inner := &askedDest{}
	dest := reusingDest{ImageDestination: inner, pushed: p}
	for i, want := range []*compression.Algorithm{&compression.Gzip, &compression.Zstd} {
		reused, b, err := dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: diffIDs[i]}, nil, true)
		if err != nil || !reused || b.Digest != blobs[i].Digest || b.Size != blobs[i].Size ||
			b.CompressionOperation != types.Compress || b.CompressionAlgorithm.Name() != want.Name() {
			t.Errorf("layer %d: reused %v as %+v (%v), want %s compressed with %s", i, reused, b, err, blobs[i].Digest, want.Name())
		}
	}
	if inner.asked != 0 {
		t.Errorf("the registry was asked about %d recorded layers", inner.asked)
	}
	// The uncompressed layer was not recorded, and a copy that may not substitute
	// blobs gets the registry's answer.
	_, _, _ = dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: diffIDs[2]}, nil, true)
	_, _, _ = dest.TryReusingBlob(context.Background(), types.BlobInfo{Digest: diffIDs[0]}, nil, false)
	if inner.asked != 2 {
		t.Errorf("the registry was asked %d times about an unrecorded layer and a layer that may not be substituted, want 2", inner.asked)
	}
	p.forget()
	if _, ok := p.lookup(diffIDs[0]); ok {
		t.Error("forget left a layer recorded")
	}

	for _, tc := range []struct {
		dest, manifestType string
		sys                *types.SystemContext
		img                *cstorage.Image
	}{
		{dest: "docker://127.0.0.1:5000/team/other:abc"},
		{dest: "oci:/tmp/layout:abc"},
		{dest: "docker://127.0.0.1:5000/team/cache:abc", manifestType: imgspecv1.MediaTypeImageManifest},
		{dest: "docker://127.0.0.1:5000/team/cache:abc", sys: &types.SystemContext{CompressionFormat: &compression.Zstd}},
		{dest: "docker://127.0.0.1:5000/team/cache:abc", img: &cstorage.Image{Metadata: `{"signature-sizes":[412]}`}},
	} {
		ref, err := alltransports.ParseImageName(tc.dest)
		if err != nil {
			t.Fatal(err)
		}
		if tc.sys == nil {
			tc.sys = sys
		}
		if tc.img == nil {
			tc.img = &cstorage.Image{}
		}
		if p.applies(ref, tc.sys, tc.manifestType, tc.img) {
			t.Errorf("a push to %s (manifest type %q, compression %v, metadata %q) reuses recorded layers",
				tc.dest, tc.manifestType, tc.sys.CompressionFormat, tc.img.Metadata)
		}
	}
	var none *PushedLayers
	if none.applies(ref, sys, "", &cstorage.Image{}) {
		t.Error("a push without a record reuses layers")
	}
	none.NoteRemote(&RemoteImage{})

	// A cache entry found in the repository: its layers are there; one of another
	// repository says nothing about this one.
	q := NewPushedLayers("127.0.0.1:5000/team/cache")
	found := &RemoteImage{Name: "127.0.0.1:5000/team/other@" + digest.FromString("m").String(), manifest: raw}
	found.Config.RootFS.DiffIDs = diffIDs
	q.NoteRemote(found)
	if _, ok := q.lookup(diffIDs[0]); ok {
		t.Error("the layers of an entry of another repository were recorded")
	}
	found.Name = "127.0.0.1:5000/team/cache@" + digest.FromString("m").String()
	q.NoteRemote(found)
	if b, ok := q.lookup(diffIDs[0]); !ok || b.Digest != blobs[0].Digest {
		t.Errorf("the layers of an entry of the repository: %v %v", b, ok)
	}
	// Once a push with the record failed, only what is pushed counts.
	q.forget()
	q.NoteRemote(found)
	if _, ok := q.lookup(diffIDs[0]); ok {
		t.Error("the layers of a found entry were recorded after a push with the record failed")
	}
	q.note(raw, imgspecv1.MediaTypeImageManifest, diffIDs)
	if _, ok := q.lookup(diffIDs[0]); !ok {
		t.Error("the layers of a push were not recorded after a push with the record failed")
	}
}

// askedDest counts the layers a registry destination is asked about, and has none.
type askedDest struct {
	types.ImageDestination
	asked int
}

func (d *askedDest) TryReusingBlob(context.Context, types.BlobInfo, types.BlobInfoCache, bool) (bool, types.BlobInfo, error) {
	d.asked++
	return false, types.BlobInfo{}, nil
}
