package cli

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profileEnv names a file that gets a CPU profile of the command (`go tool pprof
// bin/forge FILE`), taken in the process that does the work: inside the user namespace
// when forge enters one. memProfileEnv names one for a heap profile (allocations over the
// whole command) written when it ends.
const (
	profileEnv    = "FORGE_CPUPROFILE"
	memProfileEnv = "FORGE_MEMPROFILE"
)

// startProfile starts the profiles the environment asks for; the returned function
// stops them.
func startProfile() (stop func(), err error) {
	stopMem := func() {}
	if path := os.Getenv(memProfileEnv); path != "" {
		runtime.MemProfileRate = 64 << 10
		stopMem = func() {
			if f, err := os.Create(path); err == nil {
				runtime.GC()
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
	}
	path := os.Getenv(profileEnv)
	if path == "" {
		return stopMem, nil
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
		stopMem()
	}, nil
}
