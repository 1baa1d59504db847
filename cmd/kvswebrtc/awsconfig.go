package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/kvswebrtc/kvswebrtc/iotcreds"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// awsGroup is the help heading of the flags awsFlags registers.
const awsGroup = "AWS flags (as the aws CLI's; also AWS_* environment variables and ~/.aws/config)"

// awsFlags are the flags every command that talks to KVS shares.
type awsFlags struct {
	endpointURL string
	region      string
	profile     string
	// defaultRegion, when set, replaces us-west-2 as the region used when
	// neither --region nor the chain names one.
	defaultRegion string
	iot           iotFlags
}

// iotFlags are the flags of the C SDK samples' AWS IoT credentials: a
// device certificate instead of AWS keys. Each defaults to the environment
// variable the samples read.
type iotFlags struct {
	endpoint, roleAlias, thingName, cert, key, ca string
}

// iotGroup is the help heading of the IoT flags.
const iotGroup = "AWS IoT flags (a device certificate instead of AWS keys, as the C SDK's samples take it)"

// iotEnv maps each IoT flag to the environment variable it defaults to.
var iotEnv = []struct{ flag, env string }{
	{"iot-credential-endpoint", "AWS_IOT_CORE_CREDENTIAL_ENDPOINT"},
	{"iot-role-alias", "AWS_IOT_CORE_ROLE_ALIAS"},
	{"iot-thing-name", "AWS_IOT_CORE_THING_NAME"},
	{"iot-cert", "AWS_IOT_CORE_CERT"},
	{"iot-key", "AWS_IOT_CORE_PRIVATE_KEY"},
	{"iot-ca", "AWS_KVS_CACERT_PATH"},
}

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.endpointURL, "endpoint-url", "", "KVS-compatible control-plane endpoint `URL`, e.g. http://127.0.0.1:4566 for kvswebrtc serve (default: AWS_ENDPOINT_URL, else real AWS)")
	fs.StringVar(&a.region, "region", "", "AWS `REGION` (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region, else us-west-2)")
	fs.StringVar(&a.profile, "profile", "", "named `PROFILE` of ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE, else default)")
	setGroup(fs, awsGroup, "endpoint-url", "region", "profile")
	i := &a.iot
	fs.StringVar(&i.endpoint, "iot-credential-endpoint", "", "the account's AWS IoT credentials provider `HOST` (aws iot describe-endpoint --endpoint-type iot:CredentialProvider), or host:port; with it credentials come from the device certificate (default: AWS_IOT_CORE_CREDENTIAL_ENDPOINT)")
	fs.StringVar(&i.roleAlias, "iot-role-alias", "", "the IoT role `ALIAS` whose role's credentials the device gets (default: AWS_IOT_CORE_ROLE_ALIAS)")
	fs.StringVar(&i.thingName, "iot-thing-name", "", "the `THING` the certificate is attached to (default: AWS_IOT_CORE_THING_NAME)")
	fs.StringVar(&i.cert, "iot-cert", "", "the device certificate, a PEM `FILE` (default: AWS_IOT_CORE_CERT)")
	fs.StringVar(&i.key, "iot-key", "", "its private key, a PEM `FILE` (default: AWS_IOT_CORE_PRIVATE_KEY)")
	fs.StringVar(&i.ca, "iot-ca", "", "CA certificates (PEM `FILE`) that verify the endpoint (default: AWS_KVS_CACERT_PATH, else the system's; AWS IoT's chain to Amazon Root CA 1)")
	var names []string
	for _, e := range iotEnv {
		names = append(names, e.flag)
	}
	setGroup(fs, iotGroup, names...)
}

// iotConfig returns the iotcreds.Config of the IoT flags and their
// environment variables, nil when no endpoint is given in either (no IoT),
// or a usage error naming what is missing.
func (a *awsFlags) iotConfig() (*iotcreds.Config, error) {
	vals := []*string{&a.iot.endpoint, &a.iot.roleAlias, &a.iot.thingName, &a.iot.cert, &a.iot.key, &a.iot.ca}
	for i, e := range iotEnv {
		if *vals[i] == "" {
			*vals[i] = os.Getenv(e.env)
		}
	}
	i := a.iot
	if i.endpoint == "" {
		if i.roleAlias != "" || i.cert != "" || i.key != "" {
			return nil, usageError{"--iot-credential-endpoint (or AWS_IOT_CORE_CREDENTIAL_ENDPOINT) is missing: the other --iot-* flags need it"}
		}
		return nil, nil
	}
	var missing []string
	for _, m := range []struct{ name, v string }{{"--iot-role-alias", i.roleAlias}, {"--iot-cert", i.cert}, {"--iot-key", i.key}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, usageError{fmt.Sprintf("AWS IoT credentials need %s too (or their AWS_IOT_CORE_* variables)", strings.Join(missing, ", "))}
	}
	return &iotcreds.Config{Endpoint: i.endpoint, RoleAlias: i.roleAlias, ThingName: i.thingName, CertFile: i.cert, KeyFile: i.key, CAFile: i.ca}, nil
}

// iotRegionRe finds the region in an AWS IoT endpoint's host name.
var iotRegionRe = regexp.MustCompile(`\.iot\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com`)

// errNoCredentials: the AWS default chain found no credentials.
var errNoCredentials = errors.New("no AWS credentials found (none in the environment, the profile, SSO or instance metadata); " +
	"either configure real ones (aws configure; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; --profile; or --iot-* with a device certificate), " +
	"or run `kvswebrtc serve` and paste the lines it prints (or add --endpoint-url http://127.0.0.1:4566)")

// load builds the aws.Config from the standard chain (environment,
// profiles, SSO, IMDS), with --endpoint-url, --region and --profile
// applied, and checks that it has credentials. When the endpoint is a
// loopback address and the chain has none, the local service's public
// development key pair is used, with a note on stderr; elsewhere no
// credentials is errNoCredentials, one sentence saying the ways out. The
// SDK's own log lines (IMDS warnings) are not printed.
func (a *awsFlags) load(ctx context.Context, stderr io.Writer) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	if a.endpointURL != "" {
		u, err := url.Parse(a.endpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return aws.Config{}, usageError{fmt.Sprintf("--endpoint-url %q is not an http:// or https:// URL", a.endpointURL)}
		}
		opts = append(opts, config.WithBaseEndpoint(a.endpointURL))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var pe config.SharedConfigProfileNotExistError
		if errors.As(err, &pe) {
			return aws.Config{}, usageError{fmt.Sprintf("profile %q is in neither ~/.aws/config nor ~/.aws/credentials (aws configure --profile %s makes it)", pe.Profile, pe.Profile)}
		}
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	ic, err := a.iotConfig()
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" && ic != nil {
		if m := iotRegionRe.FindStringSubmatch(ic.Endpoint); m != nil {
			cfg.Region = m[1]
		}
	}
	if cfg.Region == "" {
		cfg.Region = cmp.Or(a.defaultRegion, localkvs.DefaultRegion)
	}
	if ic != nil {
		creds, err := iotcreds.NewCache(*ic)
		if err != nil {
			return aws.Config{}, usageError{strings.Replace(err.Error(), "iotcreds: invalid config: ", "AWS IoT credentials: ", 1)}
		}
		cfg.Credentials = creds
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := creds.Retrieve(ctx); err != nil {
			return aws.Config{}, fmt.Errorf("getting credentials with the device certificate: %w", err)
		}
		return cfg, nil
	}
	endpoint := a.endpointURL
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	err = checkCredentials(ctx, cfg)
	if err == nil {
		return cfg, nil
	}
	if isLoopbackURL(endpoint) && errors.Is(err, errNoCredentials) {
		fmt.Fprintf(stderr, "note: no AWS credentials configured; using the local service's development key %s\n", localkvs.DevAccessKeyID)
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""))
		return cfg, nil
	}
	return aws.Config{}, err
}

// checkCredentials retrieves cfg's credentials (for at most 5 s: instance
// metadata that is not there takes a while to say so). It returns
// errNoCredentials when the chain found none, else the chain's error.
func checkCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return errNoCredentials
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := cfg.Credentials.Retrieve(ctx)
	switch {
	case err == nil && c.AccessKeyID != "":
		return nil
	case err == nil, strings.Contains(err.Error(), "IMDS"), strings.Contains(err.Error(), "ec2imds"),
		errors.Is(err, context.DeadlineExceeded):
		// The chain's last link, instance metadata, answered no (or not at all):
		// nothing before it was configured.
		return errNoCredentials
	}
	return fmt.Errorf("loading AWS credentials: %w", err)
}

// haveCredentials reports whether cfg's credentials resolve.
func haveCredentials(ctx context.Context, cfg aws.Config) bool {
	return checkCredentials(ctx, cfg) == nil
}

func isLoopbackURL(s string) bool {
	if s == "" {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiError shortens an error of an AWS API call to "Code: message" (the
// SDK's wraps it in the operation, the status and the request id).
func apiError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// newLogger returns a text logger on w at the named level.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn":
		lv = slog.LevelWarn
	default:
		return nil, fmt.Errorf("--log-level %q is not debug, info or warn", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// exitErr prints err for command name and returns exit code 1, or 2 for a
// usageError.
func exitErr(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "kvswebrtc %s: %v\n", name, err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError marks an error caused by the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// sameService returns the flags, each after a space, that point another
// command at the service a points at: --endpoint-url, --region and
// --profile as given ("" when none was).
func (a *awsFlags) sameService() string {
	s := ""
	for _, f := range []struct{ name, v string }{{"endpoint-url", a.endpointURL}, {"region", a.region}, {"profile", a.profile}} {
		if f.v != "" {
			s += " --" + f.name + " " + f.v
		}
	}
	return s
}
