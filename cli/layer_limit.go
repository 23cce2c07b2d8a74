package cli

import (
	"fmt"

	"github.com/docker/go-units"
	ucli "github.com/urfave/cli/v2"
)

// defaultMaxLayerSize bounds a decompression bomb while leaving room for the largest
// layers of real images (CUDA and ML bases have single layers of several GiB).
const defaultMaxLayerSize = "16GiB"

func maxLayerSizeFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "max-layer-size",
		EnvVars: []string{"FORGE_MAX_LAYER_SIZE"},
		Value:   defaultMaxLayerSize,
		Usage:   "fail a pull or an ADD when one layer or archive unpacks past `SIZE` (e.g. 512MiB; 0: no limit)",
	}
}

// parseSize reads a --max-layer-size value: a byte count with an optional binary unit
// (k, MiB, G, ...).
func parseSize(flag, s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--%s %q: want a size such as 512MiB or 16GiB (0: no limit)", flag, s)
	}
	return n, nil
}
