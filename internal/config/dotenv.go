package config

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/joho/godotenv"
)

// LoadDotEnv reads the .env file at path and returns a lookup that prefers getenv and falls back
// to the file, for Load. The process environment is never modified (godotenv.Read, not Load), so
// nothing leaks into child processes or other tests. A missing file is not an error: getenv is
// returned as is. A non-empty value from getenv wins; an empty one does not hide the file's.
//
// godotenv's parse errors quote the rest of the file, secrets included, so they are replaced by a
// message naming only the path.
func LoadDotEnv(path string, getenv func(string) string) (func(string) string, error) {
	file, err := godotenv.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return getenv, nil
	case err != nil:
		var perr *fs.PathError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config: reading %s: %w", path, perr.Err)
		}
		return nil, fmt.Errorf("config: %s is not a valid .env file (check quoting and variable names)", path)
	}
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return file[name]
	}, nil
}
