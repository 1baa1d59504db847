// Package iotcreds is an aws.CredentialsProvider for the AWS IoT
// credentials provider: a device that holds an X.509 certificate registered
// with AWS IoT, and no AWS keys, exchanges it for temporary credentials of
// the IAM role a role alias names, as KVS cameras running the official C
// SDK do.
//
// The exchange is one HTTPS request with mutual TLS (the device's
// certificate is the client certificate):
//
//	GET https://<credential-provider-endpoint>/role-aliases/<role-alias>/credentials
//	x-amzn-iot-thingname: <thing name>
//
// answered with {"credentials": {"accessKeyId", "secretAccessKey",
// "sessionToken", "expiration"}}. The endpoint is the account's, as
//
//	aws iot describe-endpoint --endpoint-type iot:CredentialProvider
//
// prints it. [NewCache] wraps the [Provider] in aws-sdk-go-v2's
// aws.CredentialsCache, which renews the credentials before they expire
// (five minutes before, or halfway through their lifetime when they live
// less than ten minutes) and hands the same ones to concurrent callers;
// if a renewal fails while the credentials in hand are still valid, they
// keep being used and the renewal is tried again shortly. Put it in an
// aws.Config's Credentials and every client of the module (channel,
// signaling, peer, the sigv4 signer) refreshes through it:
//
//	creds, err := iotcreds.NewCache(iotcreds.Config{
//		Endpoint:  "c1a2b3c4d5e6f7.credentials.iot.us-west-2.amazonaws.com",
//		RoleAlias: "KvsCameraIoTRoleAlias",
//		ThingName: "front-door",
//		CertFile:  "front-door.cert.pem",
//		KeyFile:   "front-door.private.key",
//		CAFile:    "AmazonRootCA1.pem", // or none: the system roots
//	})
//	cfg := aws.Config{Region: "us-west-2", Credentials: creds}
//
// Errors never hold the secret key, the session token or the private key.
// The local service of package localkvs emulates the endpoint
// (localkvs.Config.IoT), so all of this runs without AWS.
package iotcreds
