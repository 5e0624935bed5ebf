package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// PostgresBinaries is the glob where the private PostgreSQL's initdb and
// postgres are looked for (the highest version found wins).
const PostgresBinaries = "/usr/lib/postgresql/*/bin"

// startPrivateStore starts the plan's private DLQ store server (a
// redis-server or a PostgreSQL) and returns it with the store's URL; nil
// and "" when the plan has no private store.
func startPrivateStore(ctx context.Context, p *Plan) (*privateNATS, string, error) {
	if !p.PrivateStore {
		return nil, "", nil
	}
	if p.Store == "postgres" {
		s, err := startPrivatePostgres(ctx)
		if err != nil {
			return nil, "", err
		}
		return s, s.postgresURL(), nil
	}
	s, err := startPrivateRedis(ctx)
	if err != nil {
		return nil, "", err
	}
	return s, s.redisURL(), nil
}

// startPrivatePostgres initialises a cluster in a temporary folder (trust
// authentication, superuser postgres) and starts a postmaster on its own
// port, listening on 127.0.0.1 only. As root, the cluster and the server
// run as the postgres user (initdb refuses root). A clean stop is a fast
// shutdown (SIGINT: clients are disconnected, the WAL is checkpointed).
func startPrivatePostgres(ctx context.Context) (*privateNATS, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("levee/chaos: private postgres: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	root, err := os.MkdirTemp("", "levee-chaos-postgres-")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(root, "data")
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(root)
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-instructions", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("levee/chaos: private postgres: initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	b := &privateNATS{name: "postgres", bin: filepath.Join(bin, "postgres"), port: port, dir: root,
		stopSignal: syscall.SIGINT, cred: cred, args: func(port, dir string) []string {
			return []string{"-D", filepath.Join(dir, "data"), "-p", port, "-h", "127.0.0.1", "-k", dir,
				"-c", "max_connections=50", "-c", "logging_collector=off"}
		}}
	if err := b.start(ctx); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *privateNATS) postgresURL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(b.port) + "/postgres"
}

// postgresBinDir returns the newest PostgreSQL bin folder with initdb.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob(PostgresBinaries)
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("levee/chaos: private postgres: no initdb under %s", PostgresBinaries)
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// waitGroupGone waits until no process of the process group pgid is left
// (a SIGKILLed postmaster's backends exit when they see it died), then
// SIGKILLs what is left after timeout, so a restart finds the shared
// memory free.
func waitGroupGone(ctx context.Context, pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			deadline = time.Now().Add(timeout)
		}
		timer := time.NewTimer(20 * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port, nil
}

// pgReady reports whether the private postgres accepts queries (not only
// connections: while it recovers from a SIGKILL it refuses them).
func pgReady(ctx context.Context, bin string, port int) bool {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return exec.CommandContext(c, filepath.Join(filepath.Dir(bin), "pg_isready"), "-q", "-h", "127.0.0.1",
		"-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres").Run() == nil
}
