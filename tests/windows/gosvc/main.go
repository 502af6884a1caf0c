// gosvc: a typical Go service for tend's Windows end-to-end tests.
//
//	gosvc [-port N] [-exit-after DUR] [-exit-code N] [-spawn-child] [-pidfile PATH]
//	gosvc -check URL [-refuse BODY]   a smoke test (an upgrade's verify_command)
//	gosvc -hold PATH                  keeps PATH open, without sharing its deletion
//
// It serves GET /health (200 "ok") and POST /exit?code=N (exits with N), writes a numbered
// line to stdout every 200 ms, and on os.Interrupt (Ctrl+C / Ctrl+Break) prints
// "gosvc: got interrupt, shutting down" and exits 0. With -spawn-child it starts a copy of
// itself that only sleeps (a grandchild for process-tree tests). -pidfile appends
// "<role> <pid>" lines.
//
// Builds for upgrade tests differ by link-time variables, not flags (an upgrade swaps the
// program file, the command line stays): -ldflags "-X main.build=v2 -X main.mode=crash".
// GET /version answers the build; mode "crash" exits 3 at start with a panic-like line on
// stderr, mode "unhealthy" answers /health with 503, mode "badtend" is a tend that answers
// --version and exits 3 at start.
//
// -check GETs URL and exits 0 if it answers 200 with a body other than -refuse, else 1 with
// a line on stderr. -hold opens PATH as Go does on Windows (sharing read and write, not
// delete), prints "holding PATH (pid N)" and sleeps: a file another process has open, which
// Windows will neither rename nor delete (upgrade tests of a sharing violation).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

// Set at link time (see above).
var (
	build = "v1"
	mode  = "ok"
)

func appendLine(path, s string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, s)
		f.Close()
	}
}

// lookup is a real Go crash site for crash-record tests: its index comes from the command
// line, so the compiler cannot see that it is out of range.
func lookup(xs []int, i int) int {
	return xs[i]
}

// smoke is -check: 0 when url answers 200 with a body other than refuse.
func smoke(url, refuse string) int {
	c := http.Client{Timeout: 2 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smoke test: cannot reach the service:", err)
		return 1
	}
	defer r.Body.Close()
	b := make([]byte, 256)
	n, _ := r.Body.Read(b)
	body := strings.TrimSpace(string(b[:n]))
	if r.StatusCode != http.StatusOK || (refuse != "" && body == refuse) {
		fmt.Fprintf(os.Stderr, "smoke test: /orders answered 500 (build %s)\n", body)
		return 1
	}
	return 0
}

func main() {
	// A bad build of tend (tend upgrade --self's tests): it answers --version like tend, and
	// cannot start.
	if mode == "badtend" {
		if len(os.Args) > 1 && os.Args[1] == "--version" {
			fmt.Println("tend 9.9.9-bad")
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bad tend: this build cannot start: missing runtime")
		os.Exit(3)
	}
	port := flag.Int("port", 0, "port for /health (0 = no server)")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long (0 = never)")
	exitCode := flag.Int("exit-code", 0, "exit code for -exit-after")
	spawnChild := flag.Bool("spawn-child", false, "start a sleeping copy of itself")
	sleeper := flag.Bool("sleeper", false, "internal: only sleep")
	pidfile := flag.String("pidfile", "", "append '<role> <pid>' here")
	panicAfter := flag.Duration("panic-after", 0, "panic (index out of range) after this long (0 = never)")
	check := flag.String("check", "", "smoke test: GET this URL and exit")
	refuse := flag.String("refuse", "", "with -check: fail if the body is this")
	hold := flag.String("hold", "", "keep this file open and sleep")
	flag.Parse()

	if *check != "" {
		os.Exit(smoke(*check, *refuse))
	}
	if *hold != "" {
		f, err := os.Open(*hold)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gosvc: cannot hold:", err)
			os.Exit(1)
		}
		defer f.Close()
		fmt.Printf("holding %s (pid %d)\n", *hold, os.Getpid())
		time.Sleep(time.Hour)
		return
	}

	if *panicAfter > 0 {
		go func() {
			time.Sleep(*panicAfter)
			fmt.Println(lookup([]int{1, 2, 3}, len(os.Args)+4))
		}()
	}

	if *sleeper {
		appendLine(*pidfile, fmt.Sprintf("grandchild %d", os.Getpid()))
		time.Sleep(time.Hour)
		return
	}
	appendLine(*pidfile, fmt.Sprintf("child %d", os.Getpid()))
	if mode == "crash" {
		fmt.Fprintf(os.Stderr, "gosvc %s: panic: cannot open database\n", build)
		os.Exit(3)
	}
	if *spawnChild {
		self, _ := os.Executable()
		cmd := exec.Command(self, "-sleeper", "-pidfile", *pidfile)
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "gosvc: cannot start child:", err)
		}
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)

	if *port != 0 {
		http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
			if mode == "unhealthy" {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		http.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, build)
		})
		http.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
			code, _ := strconv.Atoi(r.URL.Query().Get("code"))
			fmt.Fprintf(w, "exiting with %d\n", code)
			fmt.Fprintf(os.Stderr, "gosvc: asked to exit with code %d\n", code)
			go func() { time.Sleep(50 * time.Millisecond); os.Exit(code) }()
		})
		go func() {
			if err := http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil); err != nil {
				fmt.Fprintln(os.Stderr, "gosvc: listen:", err)
				os.Exit(3)
			}
		}()
	}
	var deadline <-chan time.Time
	if *exitAfter > 0 {
		deadline = time.After(*exitAfter)
	}
	tick := time.NewTicker(200 * time.Millisecond)
	n := 0
	fmt.Printf("gosvc: started pid %d\n", os.Getpid())
	for {
		select {
		case <-interrupt:
			fmt.Println("gosvc: got interrupt, shutting down")
			os.Exit(0)
		case <-deadline:
			fmt.Fprintf(os.Stderr, "gosvc: exiting with code %d\n", *exitCode)
			os.Exit(*exitCode)
		case <-tick.C:
			n++
			fmt.Printf("gosvc line %d\n", n)
		}
	}
}
