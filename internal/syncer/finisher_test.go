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

// finishers are the only files allowed to call the store's FinishRun: the engine (its one finish at the
// end of Run, and Abandon), the store that defines it, and the benchmark's simulated workers, which
// measure the claim and never run a sync.
var finishers = map[string]bool{
	"internal/syncer/syncer.go":  true,
	"internal/store/store.go":    true,
	"internal/bench/dispatch.go": true,
}

// No package but the engine finishes a run: a second finisher (a dispatcher or CLI fallback that writes
// the run's end itself) would be a second place deciding how a run ends. Tests may finish runs they
// set up.
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
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || finishers[filepath.ToSlash(rel)] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "FinishRun" {
				t.Errorf("%s: calls FinishRun; finish a run through the engine (syncer.Abandon for a run it could not carry out)", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
