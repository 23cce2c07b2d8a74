package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// sourceDate is the fixed timestamp of a reproducible build or commit: --timestamp, else
// the SOURCE_DATE_EPOCH build arg (buildArg, bud only), else the SOURCE_DATE_EPOCH
// environment variable; nil when none is set.
func sourceDate(c *ucli.Context, buildArg string) (*time.Time, error) {
	env, _ := os.LookupEnv("SOURCE_DATE_EPOCH")
	var flag *int64
	if c.IsSet("timestamp") {
		v := c.Int64("timestamp")
		flag = &v
	}
	return parseSourceDate(flag, buildArg, env)
}

// parseSourceDate picks the first of the flag, the build arg and the environment variable
// that is set (an empty value is unset, as reproducible-builds.org says) and checks it.
func parseSourceDate(flag *int64, buildArg, env string) (*time.Time, error) {
	var secs int64
	switch {
	case flag != nil:
		secs = *flag
	case buildArg != "" || env != "":
		name, v := "--build-arg SOURCE_DATE_EPOCH", buildArg
		if v == "" {
			name, v = "SOURCE_DATE_EPOCH", env
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want whole seconds since the epoch", name, v)
		}
		secs = n
	default:
		return nil, nil
	}
	if secs < 0 || secs > 253402300799 { // 9999-12-31T23:59:59Z: what a tar header and RFC 3339 can hold
		return nil, fmt.Errorf("timestamp %d: want 0 to 253402300799 seconds since the epoch", secs)
	}
	t := time.Unix(secs, 0).UTC()
	return &t, nil
}
