package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// describeMachine returns the markdown list that says where the numbers come from.
func describeMachine(ctx context.Context, c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- CPU: %d × %s\n", runtime.NumCPU(), cpuinfo("model name"))
	fmt.Fprintf(&b, "- memory: %s\n", meminfo("MemTotal"))
	fmt.Fprintf(&b, "- kernel: %s, %s\n", firstLine(os.ReadFile("/proc/sys/kernel/osrelease")), osRelease())
	fmt.Fprintf(&b, "- disk (work directory): %s\n", disk(ctx, c.Work))
	fmt.Fprintf(&b, "- forge: %s\n", firstLine(exec.CommandContext(ctx, c.Forge, "version").Output()))
	fmt.Fprintf(&b, "- Buildah: %s (BUILDAH_ISOLATION=chroot, --layers)\n",
		firstLine(exec.CommandContext(ctx, c.Buildah, "--version").Output()))
	return b.String()
}

func firstLine(b []byte, err error) string {
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// field returns the value of the first "key: value" line of a /proc file.
func field(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func cpuinfo(key string) string { return field("/proc/cpuinfo", key) }

func meminfo(key string) string {
	var kb int64
	if _, err := fmt.Sscanf(field("/proc/meminfo", key), "%d kB", &kb); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

func osRelease() string {
	f, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(f), "\n") {
		if name, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(name, `"`)
		}
	}
	return "unknown OS"
}

// disk describes the filesystem of dir: device, type, size, and whether it rotates.
func disk(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "findmnt", "-n", "-o", "SOURCE,FSTYPE,SIZE", "-T", dir).Output()
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return strings.TrimSpace(string(out))
	}
	desc := fmt.Sprintf("%s, %s, %s", fields[0], fields[1], fields[2])
	rot, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(fields[0]), "queue", "rotational"))
	if err == nil {
		kind := map[string]string{"0": "non-rotational", "1": "rotational (as the kernel reports it; virtual disks often say so)"}
		desc += ", " + kind[strings.TrimSpace(string(rot))]
	}
	return desc
}
