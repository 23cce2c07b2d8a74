package storage

import (
	"testing"

	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

func TestWithReleasingKeepsSignedImagesUnwrapped(t *testing.T) {
	var ref types.ImageReference // only its wrapping is looked at
	for _, tc := range []struct {
		metadata string
		wrapped  bool
	}{
		{"", true},
		{CacheMetadata("sha256:1234"), true},
		{`{"signature-sizes":[]}`, true},
		{`{"signature-sizes":[412]}`, false},
		{`{"signatures-sizes":{"sha256:ab":[99]}}`, false},
		{`{"signature-sizes":`, false}, // unreadable: leave image/v5 to read it
	} {
		_, wrapped := withReleasing(ref, &cstorage.Image{Metadata: tc.metadata}).(releasingRef)
		if wrapped != tc.wrapped {
			t.Errorf("metadata %q: wrapped %v, want %v", tc.metadata, wrapped, tc.wrapped)
		}
	}
}
