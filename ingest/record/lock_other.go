//go:build !unix

package record

import (
	"errors"
	"os"
)

func lockDir(dir string) (*os.File, error) {
	return nil, errors.New("record: the spool needs a Unix system (flock)")
}
