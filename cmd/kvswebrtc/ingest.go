package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kvswebrtc/kvswebrtc/peer"
)

// ingestValue is master's --ingest: a bool flag (--ingest is "on") that
// also takes --ingest=auto and --ingest=off.
type ingestValue struct{ mode peer.Ingestion }

func (v *ingestValue) String() string {
	if v == nil {
		return "off"
	}
	return v.mode.String()
}

func (v *ingestValue) Set(s string) error {
	m, err := peer.ParseIngestion(s)
	if err != nil {
		return fmt.Errorf("want on, auto or off")
	}
	v.mode = m
	return nil
}

// IsBoolFlag lets --ingest stand alone.
func (v *ingestValue) IsBoolFlag() bool { return true }

// ingestFlag registers --ingest and returns its value.
func ingestFlag(fs *flag.FlagSet) *ingestValue {
	v := &ingestValue{}
	fs.Var(v, "ingest", "record to the channel's stream through the KVS media server (WebRTC ingestion): --ingest, or --ingest=auto to ingest only when the channel's media storage is enabled; sends the embedded H.264 + Opus clip unless a source is given")
	setChoices(fs, "ingest", "on", "auto", "off")
	return v
}

// printIngestion prints the master's ingestion steps.
func printIngestion(m *peer.Master, out io.Writer) {
	m.OnIngestion(func(ev peer.IngestionEvent) {
		switch ev.State {
		case peer.IngestJoining:
			if ev.Attempt > 1 {
				fmt.Fprintf(out, "%s ingestion: JoinStorageSession again (attempt %d)\n", stamp(), ev.Attempt)
			} else {
				fmt.Fprintf(out, "%s ingestion: JoinStorageSession\n", stamp())
			}
		case peer.IngestConnected:
			fmt.Fprintf(out, "%s ingestion: connected to the media server; recording\n", stamp())
		case peer.IngestDisconnected:
			fmt.Fprintf(out, "%s ingestion: lost the storage session (%v); joining again\n", stamp(), ev.Err)
		case peer.IngestGaveUp:
			fmt.Fprintf(out, "%s ingestion: %v\n", stamp(), ev.Err)
		}
	})
}
