package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profileEnv names a file that gets a CPU profile of the command (`go tool pprof
// bin/forge FILE`), taken in the process that does the work: inside the user namespace
// when forge enters one.
const profileEnv = "FORGE_CPUPROFILE"

// startProfile starts the CPU profile profileEnv asks for; the returned function stops it.
func startProfile() (stop func(), err error) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
