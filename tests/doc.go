// Package tests holds forge's end-to-end tests: the real binary, run as an
// unprivileged user against real registries, with results checked by tools
// that are not forge (skopeo, umoci, the registry's access log, archive/tar).
//
// The environment comes from tests/run.sh (`sudo make test`); without it
// every test is skipped with a message naming what is missing.
package tests
