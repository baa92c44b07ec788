package release

import (
	"bufio"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/telltale-dev/telltale/internal/proctest"
	"github.com/telltale-dev/telltale/internal/testenv"
	"github.com/telltale-dev/telltale/pkg/schema"
)

// TestDebInstalls builds the .deb packages of both commands, installs them
// with dpkg on this machine, checks what they lay down (binaries, units
// that systemd-analyze verifies, conffiles, the system user), runs the
// exporter as its unit says — its user, its ambient capabilities, its
// defaults file's flags — from the installed path, then purges both and
// checks that nothing is left. It installs system-wide, so outside CI it
// runs only when TELLTALE_TEST_DPKG=1.
func TestDebInstalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and installs packages")
	}
	if !testenv.InCI() && os.Getenv("TELLTALE_TEST_DPKG") != "1" {
		t.Skip("installs .deb packages system-wide: set TELLTALE_TEST_DPKG=1 (CI runs it)")
	}
	testenv.Root(t)
	dpkg := testenv.Binary(t, "dpkg", "")
	analyze := testenv.Binary(t, "systemd-analyze", "")
	for _, c := range Commands {
		if out, err := exec.Command("dpkg-query", "-W", c.Name).CombinedOutput(); err == nil {
			t.Fatalf("%s is installed on this machine already (%s): the test would replace it", c.Name, strings.TrimSpace(string(out)))
		}
	}
	if _, err := user.Lookup("telltale"); err == nil {
		t.Fatalf("a user telltale exists on this machine already: the test would remove it")
	}

	stamp := Stamp{Version: "1.2.3", Revision: "abc1234", Branch: "main"}
	out := t.TempDir()
	var debs []string
	for _, c := range Commands {
		bin := buildHost(t, c, stamp)
		deb, err := Deb(out, filepath.Join(root, "packaging"), c, stamp.Version, runtime.GOARCH, bin, filepath.Join(root, "LICENSE"))
		if err != nil {
			t.Fatal(err)
		}
		if want := c.Name + "_1.2.3_" + runtime.GOARCH + ".deb"; filepath.Base(deb) != want {
			t.Errorf("package %s, want %s", filepath.Base(deb), want)
		}
		debs = append(debs, deb)
	}
	purge := func() {
		args := []string{"--purge"}
		for _, c := range Commands {
			args = append(args, c.Name)
		}
		if b, err := exec.Command(dpkg, args...).CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, b)
		}
	}
	if b, err := exec.Command(dpkg, append([]string{"-i"}, debs...)...).CombinedOutput(); err != nil {
		purge()
		t.Fatalf("dpkg -i: %v\n%s", err, b)
	}
	purged := false
	t.Cleanup(func() {
		if !purged {
			purge()
		}
	})

	u, err := user.Lookup("telltale")
	if err != nil {
		t.Fatalf("no system user telltale after install: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid == 0 || uid >= 1000 {
		t.Errorf("user telltale has uid %s, want a system uid (1-999)", u.Uid)
	}
	for _, c := range Commands {
		files := map[string]os.FileMode{
			"/usr/bin/" + c.Name:                         0o755,
			"/lib/systemd/system/" + c.Name + ".service": 0o644,
			"/etc/default/" + c.Name:                     0o644,
			"/usr/share/doc/" + c.Name + "/copyright":    0o644,
		}
		for p, mode := range files {
			fi, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: %v", c.Name, err)
				continue
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), mode)
			}
		}
		conf, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", c.Name).Output()
		if err != nil || !strings.Contains(string(conf), "/etc/default/"+c.Name) {
			t.Errorf("%s: conffiles %q (%v), want /etc/default/%s among them", c.Name, conf, err, c.Name)
		}
		unit := "/lib/systemd/system/" + c.Name + ".service"
		if b, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, b)
		}
		if v, err := exec.Command("/usr/bin/"+c.Name, "--version").CombinedOutput(); err != nil || !strings.Contains(string(v), "version 1.2.3") {
			t.Errorf("/usr/bin/%s --version: %v\n%s", c.Name, err, v)
		}
	}

	// The detector checkpoints into the directory systemd gives it: with
	// ProtectSystem=strict nothing else is writable.
	for _, c := range Commands {
		svc := readUnit(t, "/lib/systemd/system/"+c.Name+".service")
		env := readEnvFile(t, strings.TrimPrefix(svc["EnvironmentFile"], "-"))
		storage := ""
		for _, a := range strings.Fields(env["ARGS"]) {
			if dir, ok := strings.CutPrefix(a, "--storage.path="); ok {
				storage = dir
			}
		}
		if state := svc["StateDirectory"]; (storage != "" || state != "") && storage != "/var/lib/"+state {
			t.Errorf("%s: --storage.path=%q, but the unit's StateDirectory=%q makes /var/lib/%[3]s writable", c.Name, storage, state)
		}
	}

	// The exporter as systemd would start it.
	c := exporter(t)
	svc := readUnit(t, "/lib/systemd/system/"+c.Name+".service")
	if svc["User"] != "telltale" {
		t.Errorf("unit runs as %q, want telltale", svc["User"])
	}
	env := readEnvFile(t, strings.TrimPrefix(svc["EnvironmentFile"], "-"))
	argv := strings.Fields(svc["ExecStart"])
	var args []string
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "$") {
			// systemd splits an unbraced $VAR into words.
			args = append(args, strings.Fields(env[strings.TrimPrefix(a, "$")])...)
			continue
		}
		args = append(args, a)
	}
	// The shipped flags, with a free port for the test in place of the
	// shipped one (the flag is a list: each given address is served).
	args = slices.DeleteFunc(args, func(a string) bool { return strings.HasPrefix(a, "--web.listen-address=") })
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(argv[0], append(args, "--web.listen-address="+addr)...)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		AmbientCaps: capabilities(t, svc["AmbientCapabilities"]),
	}
	p := proctest.StartCmd(t, cmd)
	body := metrics(t, "http://"+addr+"/metrics", p)
	if !strings.Contains(body, `version="1.2.3"`) || !strings.Contains(body, schema.ServicePrefix) {
		t.Errorf("the installed exporter's /metrics lacks its version or its services:\n%.2000s", body)
	}
	// With its capabilities it reads other users' processes as root
	// does: no more permission errors than an exporter run as root (as
	// user telltale without them, every root process's io is refused).
	rootAddr := testenv.FreeAddr(t)
	rp := proctest.Start(t, "", argv[0], append(args, "--web.listen-address="+rootAddr)...)
	rootBody := metrics(t, "http://"+rootAddr+"/metrics", rp)
	refused := schema.ExporterReadErrors.Name + `{file="io",reason="permission"}`
	if got, root := counter(body, refused), counter(rootBody, refused); got > root {
		t.Errorf("as user telltale with the unit's capabilities, %s is %v; as root %v", refused, got, root)
	}
	p.Stop()
	rp.Stop()

	purge()
	purged = true
	for _, c := range Commands {
		for _, p := range []string{"/usr/bin/" + c.Name, "/lib/systemd/system/" + c.Name + ".service", "/etc/default/" + c.Name, "/usr/share/doc/" + c.Name} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s is left after purge", p)
			}
		}
	}
	if _, err := user.Lookup("telltale"); err == nil {
		t.Errorf("user telltale is left after purge")
	}
	if _, err := user.LookupGroup("telltale"); err == nil {
		t.Errorf("group telltale is left after purge")
	}
}

// counter is the value of the sample named (with its labels) in an
// exposition, 0 when absent.
func counter(exposition, series string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// readUnit reads the [Service] section of a unit file.
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = v
		}
	}
	return out
}

// readEnvFile reads KEY="value" lines as systemd's EnvironmentFile does
// (the quotes removed).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

// capabilities turns a unit's capability names into numbers.
func capabilities(t *testing.T, names string) []uintptr {
	t.Helper()
	known := map[string]uintptr{
		"CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
		"CAP_BPF": unix.CAP_BPF, "CAP_PERFMON": unix.CAP_PERFMON, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	}
	var out []uintptr
	for _, n := range strings.Fields(names) {
		c, ok := known[n]
		if !ok {
			t.Fatalf("unit names capability %s, which the test does not know", n)
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
