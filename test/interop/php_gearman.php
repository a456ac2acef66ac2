<?php
// Drives PHP's gearman extension (Debian php-gearman, wraps libgearman) for interop tests.
// Usage: php php_gearman.php PORT COMMAND ARGS...
//   worker FUNC COUNT            reverse COUNT workloads, print "job <workload>" per job
//   status_worker FUNC           one job: WORK_STATUS 1/4, WORK_DATA "part", complete "done"
//   exception_worker FUNC        one job: sendException("boom"), then fail
//   do PRIO FUNC ARG [UNIQ]      foreground (PRIO normal|high|low), print "result <value> rc <n>"
//   do_status FUNC ARG [MS]      foreground with callbacks, print each event (no exceptions
//                                option: addServer(..., false))
//   do_exception FUNC ARG [MS]   as do_status, with the exceptions option
//   bg PRIO FUNC ARG [UNIQ]      background, print "handle <handle>"
//   status HANDLE                print "status <known> <running> <num> <den>"
//   status_unique UNIQ           GET_STATUS_UNIQUE: print "status_unique <fields...>"
//   ping                         ECHO: print "ping ok|failed"

$port = (int)$argv[1];
$cmd = $argv[2];
$args = array_slice($argv, 3);

function client($port, $exceptions = true) {
    // php-gearman's addServer() sends OPTION_REQ "exceptions" unless its third argument is false.
    $c = new GearmanClient();
    $c->addServer('127.0.0.1', $port, $exceptions);
    $c->setTimeout(10000);
    return $c;
}

function worker($port) {
    $w = new GearmanWorker();
    $w->addServer('127.0.0.1', $port);
    $w->setId('php-worker');
    $w->setTimeout(15000);
    return $w;
}

function out($line) {
    echo $line, "\n";
    fflush(STDOUT);
}

switch ($cmd) {
case 'worker':
    [$func, $count] = $args;
    $w = worker($port);
    $w->addFunction($func, function ($job) {
        out('job ' . $job->workload());
        return strrev($job->workload());
    });
    out('ready');
    for ($i = 0; $i < (int)$count; $i++) {
        if (!$w->work()) {
            out('work failed ' . $w->returnCode() . ' ' . $w->error());
            exit(1);
        }
    }
    break;

case 'status_worker':
    [$func] = $args;
    $w = worker($port);
    $w->addFunction($func, function ($job) {
        $job->sendStatus(1, 4);
        $job->sendData('part');
        return 'done';
    });
    out('ready');
    $w->work();
    break;

case 'exception_worker':
    [$func] = $args;
    $w = worker($port);
    $w->addFunction($func, function ($job) {
        $job->sendException('boom');
        $job->setReturn(GEARMAN_WORK_EXCEPTION);
        return null;
    });
    out('ready');
    $w->work();
    break;

case 'do':
    $prio = $args[0];
    $func = $args[1];
    $arg = $args[2];
    $uniq = $args[3] ?? null;
    $c = client($port);
    $method = ['normal' => 'doNormal', 'high' => 'doHigh', 'low' => 'doLow'][$prio];
    $res = $c->$method($func, $arg, $uniq);
    out('result ' . $res . ' rc ' . $c->returnCode());
    break;

case 'do_status':
case 'do_exception':
    [$func, $arg] = $args;
    $c = client($port, $cmd == 'do_exception');
    if ($cmd == 'do_exception') {
        // Setting an exception callback also makes libgearman request the option.
        $c->setExceptionCallback(function ($t) { out('exception ' . $t->data()); });
    }
    $c->setStatusCallback(function ($t) { out('status ' . $t->taskNumerator() . '/' . $t->taskDenominator()); });
    $c->setDataCallback(function ($t) { out('data ' . $t->data()); });
    $c->setCompleteCallback(function ($t) { out('complete ' . $t->data()); });
    $c->setFailCallback(function ($t) { out('fail'); });
    if (isset($args[2])) {
        $c->setTimeout((int)$args[2]);
    }
    $c->addTask($func, $arg);
    @$c->runTasks();
    out('end rc ' . $c->returnCode());
    break;

case 'bg':
    $prio = $args[0];
    $func = $args[1];
    $arg = $args[2];
    $uniq = $args[3] ?? null;
    $c = client($port);
    $method = ['normal' => 'doBackground', 'high' => 'doHighBackground',
               'low' => 'doLowBackground'][$prio];
    $handle = $c->$method($func, $arg, $uniq);
    out('handle ' . $handle . ' rc ' . $c->returnCode());
    break;

case 'status':
    $c = client($port);
    $st = $c->jobStatus($args[0]);
    out('status ' . implode(' ', array_map(fn($v) => (int)$v, $st)));
    break;

case 'status_unique':
    $c = client($port);
    $st = $c->jobStatusByUniqueKey($args[0]);
    out('status_unique ' . implode(' ', array_map(fn($v) => (int)$v, $st)));
    break;

case 'ping':
    $c = client($port);
    out('ping ' . ($c->ping('hello') ? 'ok' : 'failed'));
    break;

default:
    fwrite(STDERR, "unknown command $cmd\n");
    exit(2);
}
