// Package release builds Telltale's release artifacts the way Prometheus
// exporters ship: static binaries stamped with their version, tarballs in
// the Prometheus layout, .deb packages (with nfpm, from packaging/nfpm.yaml:
// systemd unit, defaults file, system user), the Grafana plugin as the zip
// Grafana installs, and sha256sums.txt over them all.
package release

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

// Command is a program Telltale releases.
type Command struct {
	// Name is the binary's, the package's and the unit's name.
	Name string
	// Dir is its main package, relative to the module root.
	Dir string
	// Description is the package's one-line description.
	Description string
}

// Commands are the programs released.
var Commands = []Command{
	{Name: "telltale-exporter", Dir: "./exporter", Description: "Finds the services of a Linux host and exposes their resources, listening ports, edges and deploys to Prometheus"},
	{Name: "telltale-detector", Dir: "./detector", Description: "Scores Prometheus series for anomalies over remote read and exposes scores and expected bands as metrics"},
}

// Arches are the Linux architectures released (GOARCH, which Debian
// names the same for these two).
var Arches = []string{"amd64", "arm64"}

// Stamp is what a binary says it is (prometheus/common/version).
type Stamp struct {
	Version, Revision, Branch string
}

// tagVersion matches what git describe gives from a release tag without
// its v: X.Y, then anything a Debian version may hold.
var tagVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+[A-Za-z0-9.+~-]*$`)

// VersionOf turns `git describe --tags --always --dirty` into a release
// version: a tag vX.Y.Z[-n-gREV][-dirty] loses its v; a bare revision
// (no tag yet) becomes 0.0.0~gitREV, which sorts before any 0.0.0 release.
func VersionOf(describe string) string {
	v := strings.TrimPrefix(strings.TrimSpace(describe), "v")
	if tagVersion.MatchString(v) {
		return v
	}
	return "0.0.0~git" + strings.NewReplacer("-", ".", "_", ".").Replace(v)
}

// Ldflags stamps s into a build.
func (s Stamp) Ldflags() string {
	const v = "github.com/prometheus/common/version"
	return fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Revision=%s -X %s.Branch=%s", v, s.Version, v, s.Revision, v, s.Branch)
}

// Build compiles c for linux/goarch into out: static (cgo off), with the
// paths of the build machine trimmed and s stamped in.
func Build(root string, c Command, goarch string, s Stamp, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", s.Ldflags(), "-o", out, c.Dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for linux/%s: %w\n%s", c.Name, goarch, err, b)
	}
	return nil
}

// TarballName is the Prometheus layout's name, without .tar.gz:
// <name>-<version>.linux-<arch>.
func TarballName(c Command, version, goarch string) string {
	return fmt.Sprintf("%s-%s.linux-%s", c.Name, version, goarch)
}

// Tarball writes dir/<TarballName>.tar.gz holding one directory of that
// name with the binary, LICENSE and README.md, and returns its path.
func Tarball(dir string, c Command, version, goarch, binary, license, readme string) (string, error) {
	top := TarballName(c, version, goarch)
	path := filepath.Join(dir, top+".tar.gz")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(src, name string, mode int64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: top + "/" + name, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	}
	err = tw.WriteHeader(&tar.Header{Name: top + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	for _, e := range []struct {
		src, name string
		mode      int64
	}{{binary, c.Name, 0o755}, {license, "LICENSE", 0o644}, {readme, "README.md", 0o644}} {
		if err == nil {
			err = add(e.src, e.name, e.mode)
		}
	}
	for _, closer := range []io.Closer{tw, gz, f} {
		if cerr := closer.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return "", fmt.Errorf("tarball %s: %w", path, err)
	}
	return path, nil
}

// Deb builds c's .deb for goarch from packaging/nfpm.yaml (packaging is
// that directory) into dir, and returns its path.
func Deb(dir, packaging string, c Command, version, goarch, binary, license string) (string, error) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	vars := map[string]string{
		"NAME": c.Name, "ARCH": goarch, "VERSION": version, "DESCRIPTION": c.Description,
		"BINARY": abs(binary), "PACKAGING": abs(packaging), "LICENSE": abs(license),
	}
	cfgPath := filepath.Join(packaging, "nfpm.yaml")
	cfg, err := nfpm.ParseFileWithEnvMapping(cfgPath, func(k string) string { return vars[k] })
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfgPath, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfgPath, err)
	}
	for _, script := range []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *script != "" && !filepath.IsAbs(*script) {
			*script = filepath.Join(abs(packaging), *script)
		}
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("%s for %s: %w", cfgPath, c.Name, err)
	}
	pkgr, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, pkgr.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	err = pkgr.Package(info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("package %s: %w", path, err)
	}
	return path, nil
}

// PluginZip zips the built plugin (Grafana's dist directory) as Grafana
// installs it — every file under a top directory named for the plugin's
// id — into dir/<id>-<version>.zip, and returns its path.
func PluginZip(dir, dist, id, version string) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.zip", id, version))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dist, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name, h.Method = id+"/"+filepath.ToSlash(rel), zip.Deflate
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("plugin zip %s: %w", path, err)
	}
	return path, nil
}

// Sums writes dir/sha256sums.txt over files (in dir), in sha256sum's
// format, and returns its path.
func Sums(dir string, files []string) (string, error) {
	var b strings.Builder
	names := slices.Clone(files)
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	for _, p := range names {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(p))
	}
	path := filepath.Join(dir, "sha256sums.txt")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}
