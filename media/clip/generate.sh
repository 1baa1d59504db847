#!/bin/sh
# Regenerates the embedded test clips from ffmpeg's synthetic sources.
# Run from the media directory (go generate does this): sh clip/generate.sh
# Needs ffmpeg built with libvpx, libopus and libx264 (Debian: apt-get install ffmpeg).
set -eu
cd "$(dirname "$0")"

# video.ivf: 5 s of VP8, 640x480, 30 fps, 400 kbit/s, a keyframe every second.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i testsrc=size=640x480:rate=30:duration=5 \
	-c:v libvpx -b:v 400k -minrate 400k -maxrate 400k -g 30 -keyint_min 30 \
	-auto-alt-ref 0 -deadline good -cpu-used 4 -pix_fmt yuv420p \
	-fflags +bitexact -flags:v +bitexact \
	video.ivf

# audio.ogg: 5 s of a 440 Hz sine, Opus stereo 48 kHz, 20 ms frames, one packet per Ogg page.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i sine=frequency=440:sample_rate=48000:duration=5 \
	-ac 2 -c:a libopus -b:a 48k -frame_duration 20 -page_duration 20000 \
	-fflags +bitexact -flags:a +bitexact \
	audio.ogg

# video.h264: 2 s of H.264 Annex-B, constrained baseline, no B-frames, 320x240, 30 fps.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i testsrc=size=320x240:rate=30:duration=2 \
	-c:v libx264 -profile:v baseline -level 3.0 -bf 0 -g 30 -b:v 200k -pix_fmt yuv420p \
	-fflags +bitexact -flags:v +bitexact \
	-bsf:v h264_mp4toannexb -f h264 \
	video.h264
