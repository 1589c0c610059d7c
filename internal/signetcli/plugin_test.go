package signetcli

import "testing"

// TestDockerEnv: the Docker Content Trust variables stand in for the
// SIGNET_* ones they mean, and only when those are unset.
func TestDockerEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DOCKER_CONTENT_TRUST_SERVER":                "https://dct.example.com",
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE":       "root",
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repo",
		"SIGNET_ROOT_PASSPHRASE":                     "signet root",
	}
	get := DockerEnv(func(k string) string { return env[k] })
	for k, want := range map[string]string{
		"SIGNET_SERVER":                "https://dct.example.com",
		"SIGNET_ROOT_PASSPHRASE":       "signet root", // SIGNET_* wins
		"SIGNET_TARGETS_PASSPHRASE":    "repo",
		"SIGNET_DELEGATION_PASSPHRASE": "repo",
		"SIGNET_TOKEN":                 "",
		"SIGNET_NEW_PASSPHRASE":        "", // no DCT meaning: no fallback
	} {
		if got := get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
