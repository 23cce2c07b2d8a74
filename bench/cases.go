package main

import (
	"fmt"
	"strings"
)

// sizes scales the fixtures: the sizes, or small ones with -quick.
type sizes struct {
	CopyFiles  int   // files in copy-20k's context
	CopyBytes  int64 // their total size
	BigBytes   int64 // bytes of incompressible data run-big's RUN writes
	MultiFiles int   // files multistage's build stage writes (40 kB each)
	BaseFiles  int   // files in base-100k's extra layer
	PkgFiles   int   // files redis-like's package-install RUN writes (8 kB each)
	SrcBytes   int64 // bytes of generated source redis-like's build RUN checksums
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{CopyFiles: 2000, CopyBytes: 20e6, BigBytes: 50e6, MultiFiles: 100, BaseFiles: 10000,
			PkgFiles: 500, SrcBytes: 25e6}
	}
	return sizes{CopyFiles: 20000, CopyBytes: 200e6, BigBytes: 500e6, MultiFiles: 1000, BaseFiles: 100000,
		PkgFiles: 2000, SrcBytes: 100e6}
}

// Contexts of the cases: a generated file tree, or an empty directory.
const (
	contextEmpty = "empty"
	contextCopy  = "copy"
)

// benchCase is one Dockerfile build measured cold, cached and with its last line changed.
type benchCase struct {
	Name     string
	Stresses string
	Context  string // contextEmpty or contextCopy
	// Dockerfile returns the Dockerfile with variant v of its last line: 1 for the cold
	// and the cached build, 2 for the last-line-changed one.
	Dockerfile func(v int) string
	RegCache   bool // also measured cold from a registry cache (forge only, see runRegCache)
}

// caseBaseRef is the reference for base-100k: the same RUN on the busybox base.
const caseBaseRef = "base-busybox"

// casesFor returns every case; base images come from the registry at reg.
func casesFor(reg string, s sizes) []benchCase {
	busybox := "FROM " + reg + "/library/busybox:latest\n"
	base100k := "FROM " + reg + "/bench/base100k:latest\n"
	last := func(v int) string { return fmt.Sprintf("RUN echo variant %d > /last\n", v) }
	touch := func(v int) string { return fmt.Sprintf("RUN echo variant %d >> /etc/group\n", v) }
	return []benchCase{
		{Name: "tiny", Stresses: "fixed cost of a build (cold includes the pull)", Context: contextEmpty,
			Dockerfile: func(v int) string {
				return busybox + "RUN echo hello > /hello.txt\n" + fmt.Sprintf("CMD [\"echo\", \"variant %d\"]\n", v)
			}},
		{Name: "steps20", Stresses: "per-step overhead (20 small RUN steps)", Context: contextEmpty, RegCache: true,
			Dockerfile: func(v int) string {
				return busybox + steps(19) + fmt.Sprintf("RUN echo step 20 variant %d > /step20\n", v)
			}},
		{Name: "copy-20k", Stresses: fmt.Sprintf("COPY of %d files, %d MB: context scan, copy, layer", s.CopyFiles, s.CopyBytes/1e6),
			Context:    contextCopy,
			Dockerfile: func(v int) string { return busybox + "COPY . /data/\n" + last(v) }},
		{Name: "run-big", Stresses: fmt.Sprintf("a RUN writing %d MB of incompressible data: diff and commit", s.BigBytes/1e6),
			Context: contextEmpty,
			Dockerfile: func(v int) string {
				return busybox + fmt.Sprintf("RUN head -c %d /dev/urandom > /big\n", s.BigBytes) + last(v)
			}},
		{Name: "multistage", Stresses: fmt.Sprintf("a build stage writing %d files, then COPY --from", s.MultiFiles),
			Context: contextEmpty,
			Dockerfile: func(v int) string {
				return strings.Replace(busybox, "\n", " AS build\n", 1) +
					fmt.Sprintf("RUN mkdir /out && for i in $(seq %d); do head -c 40000 /dev/urandom > /out/f$i; done\n", s.MultiFiles) +
					busybox + "COPY --from=build /out /out\n" + last(v)
			}},
		{Name: "base-100k", Stresses: fmt.Sprintf("a base image with %d files, then one RUN touching one file", s.BaseFiles),
			Context:    contextEmpty,
			Dockerfile: func(v int) string { return base100k + touch(v) }},
		{Name: caseBaseRef, Stresses: "reference for base-100k: the same RUN on the busybox base", Context: contextEmpty,
			Dockerfile: func(v int) string { return busybox + touch(v) }},
		{Name: caseRedisLike, Context: contextEmpty, RegCache: true,
			Stresses: fmt.Sprintf("a server's build: a package install of %d files, %d MB of source checksummed, a config step",
				s.PkgFiles, s.SrcBytes/1e6),
			Dockerfile: func(v int) string { return busybox + redisLike(s) + fmt.Sprintf(redisCmd, 6378+v) }},
	}
}

// caseRedisLike looks like the build of a server from source: steps that take real time
// to run and leave small layers, the builds a registry-shared step cache is for.
const caseRedisLike = "redis-like"

const redisCmd = `CMD ["/usr/local/bin/redis-server", "/etc/redis/redis.conf", "--port", "%d"]` + "\n"

// redisLike returns redis-like's RUN steps: a package install (s.PkgFiles files of 8 kB of
// random data, 50 per directory), a build that checksums s.SrcBytes of generated source
// four ways and keeps a 4 MB "binary" and the sums, and a small config step.
func redisLike(s sizes) string {
	pkg := fmt.Sprintf("RUN mkdir -p /usr/local/lib/redis && cd /usr/local/lib/redis && "+
		"for d in $(seq %d); do mkdir m$d && for f in $(seq 50); do head -c 8000 /dev/urandom > m$d/f$f.so; done; done\n",
		max(1, s.PkgFiles/50))
	build := fmt.Sprintf("RUN mkdir -p /usr/local/src/redis /usr/local/bin && cd /usr/local/src/redis && "+
		"head -c %d /dev/urandom > src.bin && sha256sum src.bin > sums && sha512sum src.bin >> sums && "+
		"sha1sum src.bin >> sums && md5sum src.bin >> sums && head -c 4000000 src.bin > /usr/local/bin/redis-server && "+
		"chmod 755 /usr/local/bin/redis-server && mv sums /usr/local/lib/redis/build.sums && rm src.bin\n", s.SrcBytes)
	config := "RUN mkdir -p /etc/redis /data && echo 'bind 0.0.0.0' > /etc/redis/redis.conf && " +
		"echo 'dir /data' >> /etc/redis/redis.conf\n"
	return pkg + build + config
}

// steps returns n small RUN steps.
func steps(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "RUN echo step %d > /step%d\n", i, i)
	}
	return b.String()
}

// selectCases keeps the named cases (all when names is empty), in their usual order.
func selectCases(all []benchCase, names []string) ([]benchCase, error) {
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []benchCase
	for _, c := range all {
		if want[c.Name] {
			out = append(out, c)
			delete(want, c.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("unknown case %q", n)
	}
	return out, nil
}
