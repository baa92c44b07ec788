// Some npm packages ship Go files (flatted does). Without a go.mod of its own, node_modules
// would be part of the repository's Go module, and `go vet ./...` / `go test ./...` would
// compile them. An empty module file fences the directory off. Runs after every npm install.
const fs = require('fs');
const path = require('path');

const file = path.join(__dirname, '..', 'node_modules', 'go.mod');
if (fs.existsSync(path.dirname(file))) {
  fs.writeFileSync(file, 'module telltale.invalid/node_modules\n');
}
