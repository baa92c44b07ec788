package service

import (
	"strings"
	"testing"
)

func TestClassifyCgroup(t *testing.T) {
	id := strings.Repeat("ab12", 16)
	tests := []struct {
		name  string
		paths []string
		want  cgroupGroup
		ok    bool
	}{
		{"systemd unit", []string{"/system.slice/nginx.service"}, cgroupGroup{KindSystemd, "nginx", "nginx"}, true},
		{"template instance", []string{"/system.slice/system-postgresql.slice/postgresql@15-main.service"}, cgroupGroup{KindSystemd, "postgresql@15-main", "postgresql"}, true},
		{"escaped unit", []string{`/system.slice/my\x2dapp.service`}, cgroupGroup{KindSystemd, `my\x2dapp`, "my-app"}, true},
		{"user service", []string{"/user.slice/user-1000.slice/user@1000.service/app.slice/sync.service"}, cgroupGroup{KindSystemd, "sync", "sync"}, true},
		{"user manager itself", []string{"/user.slice/user-1000.slice/user@1000.service/init.scope"}, cgroupGroup{}, false},
		{"session", []string{"/user.slice/user-0.slice/session-3.scope"}, cgroupGroup{}, false},
		{"root", []string{"/"}, cgroupGroup{}, false},
		{"init", []string{"/init.scope"}, cgroupGroup{}, false},
		{"unknown sandbox (v1 hybrid)", []string{"/", "/process_api/3fb72f3c", "/"}, cgroupGroup{}, false},
		{"docker systemd driver", []string{"/system.slice/docker-" + id + ".scope"}, cgroupGroup{KindDocker, id, ""}, true},
		{"docker cgroupfs v1", []string{"/docker/" + id, "/docker/" + id}, cgroupGroup{KindDocker, id, ""}, true},
		{"podman", []string{"/machine.slice/libpod-" + id + ".scope/container"}, cgroupGroup{KindPodman, id, ""}, true},
		{"rootless podman under user@", []string{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope"}, cgroupGroup{KindPodman, id, ""}, true},
		{"nerdctl", []string{"/system.slice/nerdctl-" + id + ".scope"}, cgroupGroup{KindContainerd, id, ""}, true},
		{"containerd cgroupfs", []string{"/default/" + id}, cgroupGroup{KindContainerd, id, ""}, true},
		{"k8s systemd driver", []string{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-" + id + ".scope"},
			cgroupGroup{KindKubernetes, "container/" + id, ""}, true},
		{"k8s cgroupfs v1", []string{"/kubepods/besteffort/pod1b2c3d4e-0000-1111-2222-333344445555/" + id},
			cgroupGroup{KindKubernetes, "container/" + id, ""}, true},
		{"k8s pod level", []string{"/kubepods.slice/kubepods-pod1b2c3d4e_0000_1111_2222_333344445555.slice"},
			cgroupGroup{KindKubernetes, "pod/1b2c3d4e-0000-1111-2222-333344445555", ""}, true},
		{"kubepods without a pod", []string{"/kubepods.slice"}, cgroupGroup{}, false},
		{"container beats unit", []string{"/system.slice/containerd.service", "/system.slice/docker-" + id + ".scope"}, cgroupGroup{KindDocker, id, ""}, true},
		{"short id is not a container", []string{"/docker/abc"}, cgroupGroup{}, false},
		{"empty", nil, cgroupGroup{}, false},
		{"malformed unit", []string{"/system.slice/.service"}, cgroupGroup{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := classifyCgroup(tt.paths)
			if got != tt.want || ok != tt.ok {
				t.Errorf("classifyCgroup(%q) = %+v, %v; want %+v, %v", tt.paths, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzClassifyCgroup(f *testing.F) {
	f.Add("/system.slice/nginx.service")
	f.Add("/kubepods/burstable/pod1b2c3d4e-0000-1111-2222-333344445555/" + strings.Repeat("a", 64))
	f.Add(`/system.slice/x\x2.service`)
	f.Fuzz(func(t *testing.T, p string) {
		g, ok := classifyCgroup([]string{p})
		if ok && (g.id == "" || g.kind == "") {
			t.Fatalf("classifyCgroup(%q) = %+v with ok", p, g)
		}
		if !ok && g != (cgroupGroup{}) {
			t.Fatalf("classifyCgroup(%q) = %+v without ok", p, g)
		}
	})
}
