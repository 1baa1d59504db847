package iotcreds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/iotcreds"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// A device with a certificate and no AWS keys calls KVS with credentials
// from the AWS IoT credentials provider, here the one localkvs emulates.
func ExampleNewCache() {
	srv, err := localkvs.Start(localkvs.Config{IoT: localkvs.IoTConfig{Enabled: true}}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	// What a device is provisioned with: its certificate and key, and the
	// CA of the endpoint (Amazon Root CA 1 for AWS IoT).
	certPEM, keyPEM, err := srv.IssueIoTDeviceCertificate("front-door", 0)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srv.IoTCACertPEM())

	creds, err := iotcreds.NewCache(iotcreds.Config{
		Endpoint:    srv.IoTCredentialEndpoint(), // aws iot describe-endpoint --endpoint-type iot:CredentialProvider
		RoleAlias:   "KvsCameraIoTRoleAlias",
		ThingName:   "front-door",
		Certificate: cert, // or CertFile and KeyFile
		RootCAs:     roots,
	})
	if err != nil {
		log.Fatal(err)
	}
	cfg := srv.AWSConfig() // region and endpoint of the local service
	cfg.Credentials = creds
	kv := kinesisvideo.NewFromConfig(cfg)
	if _, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		log.Fatal(err)
	}
	c, _ := creds.Retrieve(context.Background())
	fmt.Println("temporary credentials:", strings.HasPrefix(c.AccessKeyID, "ASIA"), c.CanExpire, c.Source)
	// Output: temporary credentials: true true IoTCredentialsProvider
}
