package main

import "path/filepath"

// Tool names, as the report prints them.
const (
	toolForge   = "forge"
	toolBuildah = "buildah"
)

// tool is one of the two builders, with the flags that make their runs comparable: the
// same storage driver, a store of their own, pull only when missing, plain-HTTP registry.
type tool struct {
	Name   string
	Bin    string
	Driver string
}

// store is a fresh store of one tool for one case and repetition, with its own HOME so
// that no cache (such as image/v5's blob-info cache) outlives it.
type store struct {
	Dir, Root, RunRoot, Home string
}

func newStore(dir string) store {
	return store{Dir: dir, Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "runroot"), Home: filepath.Join(dir, "home")}
}

func (t tool) global(s store) []string {
	return []string{t.Bin, "--root", s.Root, "--runroot", s.RunRoot, "--storage-driver", t.Driver}
}

// bud returns the argv of a Dockerfile build, with more bud flags when given.
func (t tool) bud(s store, tag, dockerfile, contextDir string, flags ...string) []string {
	argv := append(t.global(s), "bud", "--tls-verify=false")
	if t.Name == toolBuildah {
		// Buildah's defaults differ from forge's: no layer cache without --layers, and
		// --pull=true asks the registry about every base image; false pulls when missing,
		// forge's default. Isolation chroot: the OCI runtimes refuse this host's cgroups.
		argv = append(argv, "--layers", "--pull=false", "--isolation=chroot")
	}
	argv = append(argv, flags...)
	return append(argv, "-t", tag, "-f", dockerfile, contextDir)
}

// push returns the argv of a push of image to dest (a docker:// reference).
func (t tool) push(s store, image, dest string) []string {
	return append(t.global(s), "push", "--tls-verify=false", "--quiet", image, dest)
}

// env is added to the environment of the tool's commands.
func (t tool) env(s store) []string {
	return []string{"HOME=" + s.Home}
}
