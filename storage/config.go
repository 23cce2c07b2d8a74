package storage

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageConfig is an image configuration in the union of the OCI and Docker formats: the
// OCI fields plus Docker's HEALTHCHECK, ONBUILD and SHELL, which only the Docker format
// can carry. Field names and JSON keys are those both formats use.
type ImageConfig struct {
	Created      *time.Time          `json:"created,omitempty"`
	Author       string              `json:"author,omitempty"`
	Architecture string              `json:"architecture"`
	OS           string              `json:"os"`
	Variant      string              `json:"variant,omitempty"`
	Config       ContainerConfig     `json:"config"`
	RootFS       RootFS              `json:"rootfs"`
	History      []imgspecv1.History `json:"history,omitempty"`
}

// RootFS lists the layers' uncompressed digests, bottom first.
type RootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids"`
}

// ContainerConfig is the runtime part of an image configuration.
type ContainerConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	// Docker format only.
	Healthcheck *HealthConfig `json:"Healthcheck,omitempty"`
	OnBuild     []string      `json:"OnBuild,omitempty"`
	Shell       []string      `json:"Shell,omitempty"`
}

// HealthConfig is Docker's HEALTHCHECK.
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// ScratchConfig is the configuration of an empty image for this host's platform.
func ScratchConfig() ImageConfig {
	return ImageConfig{Architecture: runtime.GOARCH, OS: runtime.GOOS, RootFS: RootFS{Type: "layers"}}
}

// ParseImageConfig reads a configuration blob of either format.
func ParseImageConfig(blob []byte) (ImageConfig, error) {
	var c ImageConfig
	if err := json.Unmarshal(blob, &c); err != nil {
		return c, fmt.Errorf("parse image config: %w", err)
	}
	if c.RootFS.Type == "" {
		c.RootFS.Type = "layers"
	}
	return c, nil
}

// Clone returns a deep copy, so a working container's config never aliases its image's.
func (c ImageConfig) Clone() ImageConfig {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("marshal image config: %v", err)) // plain data: cannot fail
	}
	var out ImageConfig
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("unmarshal image config: %v", err))
	}
	return out
}
