package syncer_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/internal/testdb"
)

// owners are, for each store method that starts or finishes a run outside a claim, the only files
// allowed to call it: the engine's lifecycle (Start; the one finish at the end of a run and fail), the
// store that defines it, and the benchmark's simulated workers, which measure the claim and never run
// a sync.
var owners = map[string]map[string]bool{
	"StartRun": {
		"internal/syncer/lifecycle.go": true,
		"internal/store/store.go":      true,
	},
	"FinishRun": {
		"internal/syncer/lifecycle.go": true,
		"internal/store/store.go":      true,
		"internal/bench/dispatch.go":   true,
	},
}

// No package but the engine starts or finishes a run: a CLI that opens the run's row itself, or a
// dispatcher or CLI fallback that writes the run's end, would be a second place deciding how a run
// begins or ends. (The dispatcher's claims start runs too; the claim is its job.) Tests may start and
// finish runs they set up.
func TestOnlyTheEngineFinishesRuns(t *testing.T) {
	t.Parallel()
	root, err := testdb.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "tools") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if allowed, watched := owners[sel.Sel.Name]; watched && !allowed[filepath.ToSlash(rel)] {
				t.Errorf("%s: calls %s; let the engine start and finish runs (syncer.Engine: Start, Run, RunClaimed, Remote)",
					fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
