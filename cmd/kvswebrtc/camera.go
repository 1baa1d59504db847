package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/media"
)

func init() {
	register(&command{
		name:    "camera",
		summary: "serve the embedded clip as an RTSP camera, to try `master --source rtsp://...` without one",
		run:     runCamera,
	})
}

func runCamera(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("camera", "[flags]", stderr)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen `ADDR`")
	path := fs.String("path", "cam", "stream `PATH`")
	user := fs.String("user", "", "require this RTSP `USER` (with --pass; basic or digest)")
	pass := fs.String("pass", "", "the `PASSWORD` of --user")
	udp := fs.Bool("udp", false, "also serve RTP over UDP (RTSP clients choose)")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if (*user == "") != (*pass == "") {
		fmt.Fprintln(stderr, "kvswebrtc camera: --user and --pass go together")
		return 2
	}
	cam, err := testcam.Start(testcam.Config{Addr: *listen, Path: *path, User: *user, Pass: *pass, UDP: *udp})
	if err != nil {
		return exitErr(stderr, "camera", err)
	}
	defer cam.Close()
	fmt.Fprintf(stdout, "RTSP camera at %s (the embedded H.264 + Opus clip, looped); Ctrl-C to stop\n", media.RedactURL(cam.URL()))
	fmt.Fprintf(stdout, "stream it with: kvswebrtc master --channel NAME --source '%s'\n", media.RedactURL(cam.URL()))
	<-ctx.Done()
	return 0
}
