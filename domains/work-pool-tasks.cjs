// The work pool's thread entry when Docket runs from TypeScript source (npm start, tsx, jest): tsx compiles
// the tasks module on load. A built tree (dist/) loads the compiled work-pool-tasks.js instead.
require('tsx/cjs/api').register();
module.exports = require('./work-pool-tasks.ts');
