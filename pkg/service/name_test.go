package service

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// testFiles are the files the processes of TestProgramName see.
var testFiles = map[string]bool{
	"app.py": true, "/srv/shop/app.py": true, "/usr/local/bin/gunicorn": true, "/srv/pkg/__main__.py": true,
	"/opt/shop.jar": true, "server.js": true, "/srv/api/index.js": true, "/opt/jobs/backup.sh": true,
	"bin/worker.rb": true, "artisan": true, "a b.js": true, "hunter2": false,
}

func TestProgramName(t *testing.T) {
	tests := []struct {
		exe, comm string
		args      []string
		want      program
	}{
		{"/usr/sbin/nginx", "nginx", []string{"nginx: worker process"}, program{name: "nginx"}},
		{"/usr/bin/python3.11", "python3", []string{"python3", "app.py"}, program{name: "app", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "-u", "-W", "ignore", "/srv/shop/app.py", "--port=80"}, program{name: "app", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "-m", "http.server", "8000"}, program{name: "http.server", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "-mgunicorn", "app:app"}, program{name: "gunicorn", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "-c", "import os; print('secret')"}, program{name: "python3"}},
		{"/usr/bin/python3", "python3", []string{"python3"}, program{name: "python3"}},
		{"/usr/bin/python3", "python3", []string{"python3", "/usr/local/bin/gunicorn", "app:app"}, program{name: "gunicorn", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "/srv/pkg/__main__.py"}, program{name: "pkg", script: true}},
		{"/usr/lib/jvm/bin/java", "java", []string{"java", "-Xmx1g", "-Dpw=x", "-jar", "/opt/shop.jar", "--pw=x"}, program{name: "shop", script: true}},
		{"/usr/lib/jvm/bin/java", "java", []string{"java", "-cp", "/opt/lib/*", "org.example.OrderService"}, program{name: "OrderService", script: true}},
		{"/usr/bin/node", "node", []string{"node", "server.js"}, program{name: "server", script: true}},
		{"/usr/bin/node", "node", []string{"node", "--require", "dotenv/config", "/srv/api/index.js"}, program{name: "api", script: true}},
		{"/usr/bin/node", "node", []string{"node", "-e", "console.log(1)"}, program{name: "node"}},
		{"/usr/bin/bash", "bash", []string{"/bin/bash", "/opt/jobs/backup.sh"}, program{name: "backup", script: true, shell: true}},
		{"/usr/bin/bash", "bash", []string{"bash", "-c", "yes | head"}, program{name: "bash"}},
		{"/usr/bin/bash", "bash", []string{"bash", "/dev/fd/3"}, program{name: "bash"}},
		{"/usr/bin/bash", "bash", []string{"-bash"}, program{name: "bash"}},
		{"/usr/bin/ruby3.1", "ruby", []string{"ruby", "-I", "lib", "bin/worker.rb"}, program{name: "worker", script: true}},
		{"/usr/bin/perl", "perl", []string{"perl", "-e", "print 1"}, program{name: "perl"}},
		{"/usr/bin/php8.2", "php", []string{"php", "-d", "memory_limit=1G", "artisan", "queue:work"}, program{name: "artisan", script: true}},
		// Things that must not become names: URLs, flag-looking values, key=value.
		{"/usr/bin/python3", "python3", []string{"python3", "https://evil/x.py"}, program{name: "python3"}},
		{"/usr/bin/python3", "python3", []string{"python3", "password=hunter2"}, program{name: "python3"}},
		{"/usr/bin/node", "node", []string{"node", "--", "a b.js"}, program{name: "node"}},
		// No executable: comm, cleaned of control characters.
		{"", "kworker", nil, program{name: "kworker"}},
		{"/memfd:sealed (deleted)", "sandboxd", []string{"sandboxd"}, program{name: "sandboxd"}},
		{"", "we\x01ird", nil, program{name: "we_ird"}},
		{"", "", nil, program{name: "unknown"}},
		// comm is cut at 15 bytes: argv[0]'s base name gives it back when
		// it goes on from comm, and only then.
		{"", "telltale-export", []string{"/usr/bin/telltale-exporter", "--web.listen-address=:10171"}, program{name: "telltale-exporter"}},
		{"", "telltale-export", []string{"telltale-exporter-evil"}, program{name: "telltale-exporter-evil"}},
		{"", "telltale-export", []string{"something-else-entirely"}, program{name: "telltale-export"}},
		{"", "short", []string{"shorter-name"}, program{name: "short"}},
		{"", "telltale-export", []string{"telltale-exporter --password=x"}, program{name: "telltale-export"}},
		{"/usr/bin/myapp (deleted)", "myapp", []string{"myapp", "--password", "x"}, program{name: "myapp"}},
		// Secrets after options the parser does not know, or after "-"
		// (a program read from standard input), are no files.
		{"/usr/bin/python3", "python3", []string{"python3", "-", "--password", "hunter2", "--token", "abc123"}, program{name: "python3"}},
		{"/usr/bin/python3", "python3", []string{"python3", "--password", "hunter2"}, program{name: "python3"}},
		{"/usr/bin/node", "node", []string{"node", "-", "--token", "abc123"}, program{name: "node"}},
		{"/usr/bin/perl", "perl", []string{"perl", "-", "--token", "s3cr3tperl"}, program{name: "perl"}},
		{"/usr/lib/jvm/bin/java", "java", []string{"java", "-cp", "/opt/lib/*", "--password", "hunter2"}, program{name: "java"}},
		{"/usr/lib/jvm/bin/java", "java", []string{"java", "Main"}, program{name: "Main", script: true}},
		{"/usr/bin/python3", "python3", []string{"python3", "notthere.py"}, program{name: "python3"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{tt.exe}, tt.args...), " "), func(t *testing.T) {
			if got := programName(tt.exe, tt.comm, tt.args, func(p string) bool { return testFiles[p] }, func() string { return "" }); got != tt.want {
				t.Errorf("programName(%q, %q, %q) = %+v, want %+v", tt.exe, tt.comm, tt.args, got, tt.want)
			}
		})
	}
}

// TestOpaqueExecutables: an executable whose file name is a content hash
// (a build cache's) or an anonymous memfd is named by what the program says
// it is — its Go main package, its module for a build of loose files, its
// argv[0] — and by comm only when nothing says.
func TestOpaqueExecutables(t *testing.T) {
	hash := "43e6a1be703bc940907ffb611be5f27cd70b2ef3ddb2eca85a2658f4ccdeac9c"
	for _, tc := range []struct {
		exe, comm        string
		args             []string
		goPath, goModule string
		want             string
	}{
		{"/root/.magefile/" + hash, hash[:15], []string{"/root/.magefile/" + hash, "scenarios"}, "command-line-arguments", "github.com/acme/shop", "shop"},
		{"/root/.cache/go-build/ab/" + hash[:40] + "-d", "x", []string{"x"}, "github.com/acme/shop/cmd/orders", "github.com/acme/shop", "orders"},
		{"/memfd:sealed-91173221a7ea (deleted)", "memfd:sealed-91", []string{"line_io_tools/binary_backend", "--uid", "0"}, "", "", "binary_backend"},
		{"/memfd:x (deleted)", "worker", []string{"--password=hunter2"}, "", "", "worker"},
		{"/usr/bin/" + hash, "runner", []string{"/usr/bin/" + hash}, "", "", "runner"},
		// A file name that merely looks like hex but is short is a name.
		{"/usr/bin/deadbeef", "deadbeef", []string{"deadbeef"}, "github.com/x/other", "", "deadbeef"},
	} {
		own := func() string { return ownName(tc.goPath, tc.goModule, tc.args) }
		if got := programName(tc.exe, tc.comm, tc.args, func(string) bool { return false }, own).name; got != tc.want {
			t.Errorf("programName(%q, %q, %q) = %q, want %q", tc.exe, tc.comm, tc.args, got, tc.want)
		}
	}
}

func FuzzProgramName(f *testing.F) {
	f.Add("/usr/bin/python3", "python3", "python3\x00-m\x00pkg.mod")
	f.Add("/usr/bin/java", "java", "java\x00-jar\x00/x/y.jar")
	f.Add("/usr/bin/bash", "bash", "bash\x00-o\x00errexit\x00run.sh")
	f.Add("", "", "")
	f.Add("/usr/bin/python3", "python3", "python3\x00-\x00--password\x00hunter2")
	f.Fuzz(func(t *testing.T, exe, comm, cmdline string) {
		args := strings.Split(cmdline, "\x00")
		p := programName(exe, comm, args, func(string) bool { return true }, func() string { return ownName("", "", args) })
		if p.name == "" {
			t.Fatalf("empty name for %q %q %q", exe, comm, args)
		}
		if p.script && !safeName.MatchString(p.name) {
			t.Fatalf("unsafe script name %q from %q", p.name, args)
		}
		if p.script {
			// A name taken from the command line must be (part of) one of
			// its arguments, never a join of several.
			found := false
			for _, a := range args[1:] {
				if strings.Contains(a, p.name) {
					found = true
				}
			}
			if !found {
				t.Fatalf("script name %q not from any argument of %q", p.name, args)
			}
		}
		// Where no argument names a file, only a module or a Java class
		// names the program; no other word of the command line reaches
		// a label.
		if p := programName(exe, comm, args, func(string) bool { return false }, func() string { return "" }); p.script {
			kind := interpreterOf(path.Base(strings.TrimSuffix(exe, " (deleted)")))
			if kind == notInterpreter {
				kind = interpreterOf(comm) // the name went by comm
			}
			module := slices.ContainsFunc(args[1:], func(a string) bool { return strings.HasPrefix(a, "-m") })
			if !(kind == python && module) && kind != java {
				t.Fatalf("script name %q from %q, where no argument names a file", p.name, args)
			}
		}
	})
}

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in      string
		want    [3]uint64
		wantErr bool
	}{
		{"123 456 7\n", [3]uint64{123, 456, 7}, false},
		{"0 0 0", [3]uint64{0, 0, 0}, false},
		{"18446744073709551615 1 2\n", [3]uint64{18446744073709551615, 1, 2}, false},
		{"18446744073709551616 1 2\n", [3]uint64{}, true},
		{"", [3]uint64{}, true},
		{"1 2", [3]uint64{}, true},
		{"1 2 x", [3]uint64{}, true},
		{"1 2 3 junk", [3]uint64{}, true},
		{"-1 2 3", [3]uint64{}, true},
	}
	for _, tt := range tests {
		got, err := parseSchedstat([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseSchedstat(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && [3]uint64{got.RunningNanoseconds, got.WaitingNanoseconds, got.RunTimeslices} != tt.want {
			t.Errorf("parseSchedstat(%q) = %+v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("123 456 7\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSchedstat(b)
	})
}

func TestParseLinks(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"net:[4026531840]", 4026531840},
		{"net:[]", 0},
		{"net:[x]", 0},
		{"4026531840", 0},
		{"", 0},
	} {
		if got := parseNSLink(tt.in); got != tt.want {
			t.Errorf("parseNSLink(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[12345", 0, false},
		{"pipe:[12345]", 0, false},
		{"/dev/null", 0, false},
		{"socket:[-1]", 0, false},
		{"socket:[]", 0, false},
	} {
		if got, ok := socketInode(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseLinks(f *testing.F) {
	f.Add("socket:[1]")
	f.Add("net:[4026531840]")
	f.Add("socket:[20000000000000000000]") // found by fuzzing: an inode past 64 bits
	f.Fuzz(func(t *testing.T, s string) {
		_ = parseNSLink(s)
		if n, ok := socketInode(s); !ok && n != 0 {
			t.Fatalf("socketInode(%q) = %d without ok", s, n)
		}
	})
}
