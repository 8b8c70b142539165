// Prints one plain closing line ("tests: N passed, N failed") that any log reader understands,
// and the suite's time against its budget with the ten slowest files: a report, never a failure
// (these machines are noisy; a timing must not decide whether a change lands).
const BUDGET_SECONDS = 600;

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const files = results.testResults
      .map((r) => ({ file: r.testFilePath.replace(`${process.cwd()}/`, ''), seconds: (r.perfStats.end - r.perfStats.start) / 1000 }))
      .sort((a, b) => b.seconds - a.seconds);
    if (files.length > 10) {
      const total = (Date.now() - results.startTime) / 1000;
      const lines = [`jest: ${total.toFixed(0)} s of a ${BUDGET_SECONDS} s budget (${total <= BUDGET_SECONDS ? 'within' : 'OVER'}); the slowest files:`];
      for (const f of files.slice(0, 10)) lines.push(`  ${f.seconds.toFixed(1).padStart(6)} s  ${f.file}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    process.stdout.write(
      `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed` +
        (skipped ? `, ${skipped} skipped` : '') +
        '\n',
    );
  }
}
module.exports = SummaryReporter;
