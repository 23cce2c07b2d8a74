//go:build linux && cgo

// forge's early entry into its user namespace. See early_cgo.go for why and when.
//
// This runs as a constructor, before the Go runtime starts, while the process has one
// thread: the only time it can unshare(CLONE_NEWUSER) itself. It handles only the plain
// case, which the Go code would answer the same way (full mode: newuidmap and newgidmap
// in PATH, a range for the caller in /etc/subuid and /etc/subgid). Anything else, or
// anything it is unsure of, makes it return without a trace, and the Go code does the
// work as before. It is one file, a little over our usual length, so that all of it stays
// static: nothing here is visible to the rest of the binary.

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc passes argc, argv and the environment to constructors; other C libraries do not,
// and forge built with one of them has no early entry.
#ifdef __GLIBC__

// The environment the Go side reads inside the namespace (rootless/userns.go).
#define ENV_CONFIGURED "_CONTAINERS_USERNS_CONFIGURED"
#define ENV_ROOTLESS_UID "_CONTAINERS_ROOTLESS_UID"
#define ENV_ROOTLESS_GID "_CONTAINERS_ROOTLESS_GID"
#define ENV_MODE "_FORGE_USERNS_MODE"
#define ENV_REASON "_FORGE_USERNS_REASON"
#define ENV_STAGE1 "_FORGE_USERNS_STAGE1"
#define ENV_PARENT "_FORGE_USERNS_PARENT"
// Set to "0" to leave the namespace to the Go code (tests compare the two ways).
#define ENV_EARLY "_FORGE_USERNS_EARLY"

#define SUBUID "/etc/subuid"
#define SUBGID "/etc/subgid"
// The files make_plan reads; early_test.go's build points them elsewhere.
static const char *early_passwd = "/etc/passwd", *early_subuid = SUBUID, *early_subgid = SUBGID;
#define MAX_LINE 65536 // bufio.Scanner's limit: a longer line is an error for the Go code

// The commands that enter the namespace (the ones that open the store), and the global
// flags that take a value, as cli/app.go declares them. cli's tests keep these in step.
static const char *const early_commands[] = {
    "add", "bud", "build", "build-using-dockerfile", "commit", "config", "containers",
    "copy", "from", "images", "info", "inspect", "mount", "prune", "ps", "pull", "push",
    "rm", "rmi", "run", "tag", "umount", "unmount", "unshare", NULL,
};
static const char *const early_valued_flags[] = {
    "root", "runroot", "storage-driver", "storage-opt", "registries-conf", "log-level",
    "isolation", "max-layer-size", NULL,
};

static int in_list(const char *const *list, const char *s, size_t n) {
	for (; *list; list++) {
		if (strlen(*list) == n && strncmp(*list, s, n) == 0) {
			return 1;
		}
	}
	return 0;
}

// Namespace isolation is the only choice for an ordinary user; any other value is for
// the Go code to accept or refuse.
static int plain_isolation(const char *v) {
	return v == NULL || *v == '\0' || strcmp(v, "auto") == 0 || strcmp(v, "namespaces") == 0;
}

// wants_namespace reports whether argv names a command that enters the namespace, after
// only global flags with values, and no isolation other than namespaces.
static int wants_namespace(int argc, char **argv) {
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		const char *name = argv[i] + 1;
		if (*name == '-') {
			name++;
		}
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		if (n == 0 || !in_list(early_valued_flags, name, n)) {
			return 0; // --help, --version, an unknown flag: the Go code answers
		}
		const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
		if (value == NULL) {
			return 0;
		}
		if (n == strlen("isolation") && strncmp(name, "isolation", n) == 0 && !plain_isolation(value)) {
			return 0;
		}
		i += eq ? 1 : 2;
	}
	if (i >= argc || !in_list(early_commands, argv[i], strlen(argv[i])) ||
	    !plain_isolation(getenv("FORGE_ISOLATION"))) {
		return 0;
	}
	for (i++; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i] + (argv[i][0] == '-') + (argv[i][0] == '-' && argv[i][1] == '-');
		size_t n = strcspn(a, "=");
		if (a != argv[i] && ((n == 1 && a[0] == 'h') || (n == 4 && strncmp(a, "help", 4) == 0))) {
			return 0; // help (-h, --help, -help=true, ...) needs no namespace
		}
	}
	return 1;
}

// digits parses a decimal number of at most 32 bits made only of digits, as Go's
// strconv.ParseUint(s, 10, 32).
static int digits(const char *s, size_t n, uint64_t *out) {
	uint64_t v = 0;
	if (n == 0) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX) {
			return 0;
		}
	}
	*out = v;
	return 1;
}

static int ascii_space(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// line_scan reads path line by line, calling fn on each line with its spaces trimmed, until
// fn returns non-zero. It returns fn's result, 0 at the end of the file, or -1 where the Go
// code might see the file differently: it cannot be read, a line is too long or holds a NUL,
// or a line starts or ends with a byte outside ASCII (Go also trims Unicode spaces).
static int line_scan(const char *path, int (*fn)(char *line, void *arg), void *arg) {
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		return -1;
	}
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int result = 0;
	while (result == 0 && (n = getline(&buf, &cap, f)) >= 0) {
		if (n >= MAX_LINE || memchr(buf, '\0', (size_t)n) != NULL) {
			result = -1;
			break;
		}
		char *s = buf, *e = buf + n;
		while (s < e && ascii_space(*s)) {
			s++;
		}
		while (e > s && ascii_space(e[-1])) {
			e--;
		}
		if (e > s && ((unsigned char)*s >= 0x80 || (unsigned char)e[-1] >= 0x80)) {
			result = -1;
			break;
		}
		*e = '\0';
		result = fn(s, arg);
	}
	if (result == 0 && ferror(f)) {
		result = -1;
	}
	free(buf);
	fclose(f);
	return result;
}

struct subid_query {
	const char *name; // "" when the caller has no passwd entry
	char uid[16];
	uint64_t start, count;
};

// subid_line matches one line of /etc/subuid or /etc/subgid as rootless/idmap.go's
// parseSubIDLine and findSubIDRange do: NAME-OR-UID:START:COUNT, the first match wins.
static int subid_line(char *line, void *arg) {
	struct subid_query *q = arg;
	if (*line == '\0' || *line == '#') {
		return 0;
	}
	char *c1 = strchr(line, ':');
	char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c2 == NULL || strchr(c2 + 1, ':') != NULL || c1 == line) {
		return 0;
	}
	uint64_t start, count;
	if (!digits(c1 + 1, (size_t)(c2 - c1 - 1), &start) || !digits(c2 + 1, strlen(c2 + 1), &count) ||
	    count == 0 || start + count > ((uint64_t)1 << 32)) {
		return 0;
	}
	*c1 = '\0';
	if ((q->name[0] != '\0' && strcmp(line, q->name) == 0) || strcmp(line, q->uid) == 0) {
		q->start = start;
		q->count = count;
		return 1;
	}
	return 0;
}

struct passwd_query {
	char uid[16];
	char name[256];
};

// passwd_line finds the caller's name in /etc/passwd as Go's os/user does without cgo: the
// first line of at least seven fields whose third is the uid, whose name is not empty or a
// NIS entry (+ or -) and whose fourth field is a number.
static int passwd_line(char *line, void *arg) {
	struct passwd_query *q = arg;
	char *field[4];
	int colons = 0;
	field[0] = line;
	for (char *c = line; *c; c++) {
		if (*c == ':' && ++colons < 4) {
			field[colons] = c + 1;
		}
	}
	if (*line == '#' || colons < 6) {
		return 0;
	}
	size_t name_len = (size_t)(field[1] - 1 - field[0]), uid_len = (size_t)(field[3] - 1 - field[2]);
	if (name_len == 0 || line[0] == '+' || line[0] == '-' || uid_len != strlen(q->uid) ||
	    strncmp(field[2], q->uid, uid_len) != 0) {
		return 0;
	}
	const char *g = field[3];
	if (*g == '+' || *g == '-') {
		g++;
	}
	if (*g < '0' || *g > '9') {
		return 0;
	}
	const char *digits_start = g;
	while (*g >= '0' && *g <= '9') {
		g++;
	}
	if (g - digits_start > 18) {
		return -1; // Go's Atoi may refuse it: leave the question to Go
	}
	if (*g != ':') {
		return 0;
	}
	if (name_len >= sizeof q->name) {
		return -1;
	}
	memcpy(q->name, line, name_len);
	q->name[name_len] = '\0';
	return 1;
}

// look_path finds file in PATH as Go's exec.LookPath does, giving up (0) on an empty or
// relative PATH entry, which Go treats differently.
static int look_path(const char *file, char *out, size_t size) {
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0') {
		return 0;
	}
	while (1) {
		const char *end = strchrnul(path, ':');
		size_t n = (size_t)(end - path);
		while (n > 1 && path[n - 1] == '/') {
			n--; // Go's filepath.Join drops a trailing slash
		}
		if (n == 0 || path[0] != '/' || n + strlen(file) + 2 > size) {
			return 0;
		}
		snprintf(out, size, "%.*s/%s", (int)n, path, file);
		if (strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../")) {
			return 0; // Go would clean the path: leave it to Go
		}
		struct stat st;
		if (stat(out, &st) == 0 && !S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, out, X_OK, AT_EACCESS) == 0) {
			return 1;
		}
		if (*end == '\0') {
			return 0;
		}
		path = end + 1;
	}
}

struct early_plan {
	unsigned uid, gid; // the caller's, on the host
	char newuidmap[4096], newgidmap[4096];
	struct subid_query uids, gids;
	struct passwd_query who;
};

// make_plan fills p when the Go code would choose full mode; 0 means leave it to Go.
static int make_plan(struct early_plan *p, unsigned uid, unsigned gid) {
	p->uid = uid;
	p->gid = gid;
	snprintf(p->who.uid, sizeof p->who.uid, "%u", p->uid);
	// Without an entry, Go's os/user takes the name from $USER: leave that case to Go.
	if (line_scan(early_passwd, passwd_line, &p->who) != 1) {
		return 0;
	}
	p->uids.name = p->gids.name = p->who.name;
	memcpy(p->uids.uid, p->who.uid, sizeof p->uids.uid);
	memcpy(p->gids.uid, p->who.uid, sizeof p->gids.uid);
	return look_path("newuidmap", p->newuidmap, sizeof p->newuidmap) &&
	       look_path("newgidmap", p->newgidmap, sizeof p->newgidmap) &&
	       line_scan(early_subuid, subid_line, &p->uids) == 1 && line_scan(early_subgid, subid_line, &p->gids) == 1;
}

// A helper is newuidmap or newgidmap writing one map of the process, run from a child
// forked before the unshare so that it stays outside the namespace.
struct helper {
	const char *path;
	unsigned id;
	const struct subid_query *range;
	pid_t pid;
	int out; // its standard output and error
};

// start_helper forks h's child, which waits for a byte on the pipe sync, then runs h to
// write the map of pid: 0 to the caller's id, and 1.. to the range. Without the byte (the
// pipe closed) it exits.
static int start_helper(struct helper *h, const int sync[2], pid_t pid) {
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0) {
		return -1;
	}
	h->pid = fork();
	if (h->pid != 0) {
		close(out[1]);
		h->out = out[0];
		return h->pid < 0 ? -1 : 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(sync[1]);
	char go;
	if (read(sync[0], &go, 1) != 1 || getppid() != pid) {
		_exit(1);
	}
	dup2(out[1], 1);
	dup2(out[1], 2);
	fcntl(1, F_SETFD, 0); // dup2 onto itself would keep close-on-exec
	fcntl(2, F_SETFD, 0);
	char spid[16], sid[16], sstart[24], scount[24];
	snprintf(spid, sizeof spid, "%d", (int)pid);
	snprintf(sid, sizeof sid, "%u", h->id);
	snprintf(sstart, sizeof sstart, "%llu", (unsigned long long)h->range->start);
	snprintf(scount, sizeof scount, "%llu", (unsigned long long)h->range->count);
	execl(h->path, h->path, spid, "0", sid, "1", "1", sstart, scount, (char *)NULL);
	dprintf(2, "%s", strerror(errno));
	_exit(127);
}

// read_all reads fd to its end, keeping the first size bytes in buf; it returns how many.
static size_t read_all(int fd, char *buf, size_t size) {
	char scratch[256];
	size_t n = 0;
	for (;;) {
		char *dst = n < size ? buf + n : scratch;
		ssize_t r = read(fd, dst, n < size ? size - n : sizeof scratch);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return n;
		}
		if (dst != scratch) {
			n += (size_t)r;
		}
	}
}

// finish_helper waits for h and, when it failed, appends to msg what the Go code would
// say: the command line, its exit status and its output, on one line.
static int finish_helper(struct helper *h, char *msg, size_t size) {
	char raw[1024], out[4096];
	size_t n = read_all(h->out, raw, sizeof raw), k = 0, i = 0;
	close(h->out);
	while (n > 0 && ascii_space(raw[n - 1])) {
		n--;
	}
	while (i < n && ascii_space(raw[i])) {
		i++;
	}
	// As main.go's oneLine: newlines become "; ", other control bytes are escaped, and so
	// is every byte outside ASCII (a helper's messages are ASCII; a C1 control or a stray
	// byte must not reach the terminal).
	for (; i < n && k + 5 < sizeof out; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c == '\n') {
			k += (size_t)snprintf(out + k, sizeof out - k, "; ");
		} else if (c == '\t') {
			out[k++] = ' ';
		} else if (c < 0x20 || c >= 0x7f) {
			k += (size_t)snprintf(out + k, sizeof out - k, "\\x%02x", c);
		} else {
			out[k++] = (char)c;
		}
	}
	out[k] = '\0';
	int status = 0;
	pid_t w;
	while ((w = waitpid(h->pid, &status, 0)) < 0 && errno == EINTR) {
	}
	if (w == h->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		return 0;
	}
	size_t used = strlen(msg);
	char state[96];
	if (w != h->pid) {
		snprintf(state, sizeof state, "wait: %s", strerror(errno));
	} else if (WIFSIGNALED(status)) {
		snprintf(state, sizeof state, "signal: %s", strsignal(WTERMSIG(status)));
		state[8] = (char)tolower((unsigned char)state[8]); // Go's "signal: killed"
	} else {
		snprintf(state, sizeof state, "exit status %d", WEXITSTATUS(status));
	}
	snprintf(msg + used, size - used, "%s%s %d 0 %u 1 1 %llu %llu: %s%s%s", used ? "; " : "", h->path, (int)getpid(),
	         h->id, (unsigned long long)h->range->start, (unsigned long long)h->range->count, state, k ? ": " : "", out);
	return -1;
}

// exec_inside starts forge again in the namespace, now root there with every capability,
// with the environment the Go code's own re-execution would give it.
static void exec_inside(char **argv, char **envp, const struct early_plan *p) {
	static const char *const drop[] = {
	    ENV_CONFIGURED, ENV_ROOTLESS_UID, ENV_ROOTLESS_GID, ENV_MODE, ENV_REASON, ENV_STAGE1, ENV_PARENT, NULL,
	};
	size_t n = 0;
	while (envp[n]) {
		n++;
	}
	char **env = calloc(n + 6, sizeof *env);
	if (env == NULL) {
		fprintf(stderr, "forge: start in the user namespace: out of memory\n");
		exit(1);
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(envp[i], '=');
		size_t len = eq ? (size_t)(eq - envp[i]) : strlen(envp[i]);
		if (!in_list(drop, envp[i], len)) {
			env[k++] = envp[i];
		}
	}
	const char *who = p->who.name[0] ? p->who.name : p->who.uid;
	if (asprintf(&env[k++], "%s=done", ENV_CONFIGURED) < 0 ||
	    asprintf(&env[k++], "%s=%u", ENV_ROOTLESS_UID, p->uid) < 0 ||
	    asprintf(&env[k++], "%s=%u", ENV_ROOTLESS_GID, p->gid) < 0 ||
	    asprintf(&env[k++], "%s=full", ENV_MODE) < 0 ||
	    asprintf(&env[k++], "%s=newuidmap and a range in %s for %s", ENV_REASON, SUBUID, who) < 0) {
		fprintf(stderr, "forge: start in the user namespace: out of memory\n");
		exit(1);
	}
	env[k] = NULL;
	// forge's own path, as os.Executable gives it, keeps the process's name (ps, pgrep,
	// top show "forge"); /proc/self/exe would rename it "exe".
	static char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *path = "/proc/self/exe";
	if (len > 0 && (size_t)len < sizeof self - 1 && self[0] == '/') {
		self[len] = '\0';
		if (strstr(self, " (deleted)") == NULL) {
			path = self;
		}
	}
	execve(path, argv, env);
	fprintf(stderr, "forge: exec %s: %s\n", path, strerror(errno));
	exit(1);
}

// enter_namespace puts the process into a new user and mount namespace and has the
// helpers write its maps, as plan p says. It returns 1 when that is done, or 0 when it
// could not start, with nothing changed. From the unshare on there is no way back to the
// caller's namespace, so a later failure ends forge.
static int enter_namespace(struct early_plan *p) {
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		return 0;
	}
	pid_t self = getpid();
	struct helper hs[2] = {{p->newuidmap, p->uid, &p->uids, -1, -1}, {p->newgidmap, p->gid, &p->gids, -1, -1}};
	int started = start_helper(&hs[0], fds, self) == 0 && start_helper(&hs[1], fds, self) == 0;
	close(fds[0]);
	if (!started || unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		// Not here: close the pipe, which ends the helpers, and let the Go code try
		// (and explain a failure).
		close(fds[1]);
		for (int i = 0; i < 2; i++) {
			char ignored[1] = "";
			if (hs[i].pid > 0) {
				finish_helper(&hs[i], ignored, sizeof ignored);
			} else if (hs[i].out >= 0) {
				close(hs[i].out);
			}
		}
		return 0;
	}
	// One byte for each helper (the "go"); a helper that died already is reported below.
	int ok = write(fds[1], "11", 2) == 2;
	close(fds[1]);
	char msg[4096] = "";
	int failed = finish_helper(&hs[0], msg, sizeof msg) != 0;
	failed |= finish_helper(&hs[1], msg, sizeof msg) != 0;
	if (!ok || failed) {
		fprintf(stderr, "forge: %s\n", msg[0] ? msg : "write the user namespace's id maps: the helpers did not start");
		exit(1);
	}
	return 1;
}

#ifndef FORGE_EARLY_TEST
__attribute__((constructor)) static void forge_early_userns(int argc, char **argv, char **envp) {
	const char *early = getenv(ENV_EARLY);
	if (geteuid() == 0 || getuid() != geteuid() || getauxval(AT_SECURE) || getenv(ENV_CONFIGURED) ||
	    getenv(ENV_STAGE1) || (early && strcmp(early, "0") == 0) || argv == NULL || envp == NULL ||
	    !wants_namespace(argc, argv)) {
		return;
	}
	static struct early_plan p;
	if (!make_plan(&p, (unsigned)getuid(), (unsigned)getgid())) {
		return;
	}
	// The helpers' exit statuses are read with waitpid, which an ignored SIGCHLD (kept
	// across exec from the caller) would hide; a helper that died before its "go" must
	// not kill forge with SIGPIPE. The caller's dispositions are back before the exec.
	struct sigaction dfl = {.sa_handler = SIG_DFL}, ign = {.sa_handler = SIG_IGN}, oldchld, oldpipe;
	sigaction(SIGCHLD, &dfl, &oldchld);
	sigaction(SIGPIPE, &ign, &oldpipe);
	int inside = enter_namespace(&p);
	sigaction(SIGCHLD, &oldchld, NULL);
	sigaction(SIGPIPE, &oldpipe, NULL);
	if (inside) {
		exec_inside(argv, envp, &p);
	}
}
#else
// early-test PASSWD SUBUID SUBGID UID GID prints the plan make_plan makes from those files
// ("full NAME UIDSTART UIDCOUNT GIDSTART GIDCOUNT") or "go", for early_test.go to hold
// against the Go code's.
int main(int argc, char **argv) {
	if (argc != 6) {
		return 2;
	}
	early_passwd = argv[1], early_subuid = argv[2], early_subgid = argv[3];
	static struct early_plan p;
	if (!make_plan(&p, (unsigned)strtoul(argv[4], NULL, 10), (unsigned)strtoul(argv[5], NULL, 10))) {
		puts("go");
		return 0;
	}
	printf("full %s %llu %llu %llu %llu\n", p.who.name, (unsigned long long)p.uids.start, (unsigned long long)p.uids.count,
	       (unsigned long long)p.gids.start, (unsigned long long)p.gids.count);
	return 0;
}
#endif
#endif
