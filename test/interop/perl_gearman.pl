#!/usr/bin/perl
# Drives Gearman::Client / Gearman::Worker (Debian libgearman-client-perl) for interop tests.
# Usage: perl_gearman.pl PORT COMMAND ARGS...
#   worker FUNC COUNT          reverse COUNT workloads, print "job <workload>" per job, exit
#   fail_worker FUNC           fail one job (handler returns undef), exit
#   do FUNC ARG [PRIO] [UNIQ]  foreground job, print "result <value>"
#   bg FUNC ARG [PRIO] [UNIQ]  background job, print "handle <handle>"
#   status HANDLE              print "status <known> <running> <num> <den>"
#   server_status              print "func <name> <queued> <running> <capable>" per function
use strict;
use warnings;
use Gearman::Client;
use Gearman::Worker;

$| = 1;
my ($port, $cmd, @args) = @ARGV;
my $server = "127.0.0.1:$port";

sub client {
    return Gearman::Client->new(job_servers => [$server], command_timeout => 10);
}

sub opts {
    my ($prio, $uniq) = @_;
    my %o;
    $o{priority} = $prio if defined $prio && $prio ne '' && $prio ne 'normal';
    $o{uniq} = $uniq if defined $uniq && $uniq ne '';
    return \%o;
}

if ($cmd eq 'worker' || $cmd eq 'fail_worker') {
    my ($func, $count) = @args;
    $count = 1 if $cmd eq 'fail_worker';
    my $done = 0;
    my $worker = Gearman::Worker->new(job_servers => [$server], client_id => "perl-worker");
    $worker->register_function($func => sub {
        my $job = shift;
        my $arg = $job->arg;
        print "job $arg\n";
        $done++;
        return undef if $cmd eq 'fail_worker';
        return scalar reverse $arg;
    });
    my $finish = sub { exit 0 if $done >= $count };
    print "ready\n";
    $worker->work(on_complete => $finish, on_fail => $finish, stop_if => sub { $done >= $count });
    exit 0;
}
elsif ($cmd eq 'do') {
    my ($func, $arg, $prio, $uniq) = @args;
    my $res = client()->do_task($func, $arg, opts($prio, $uniq));
    print defined $res ? "result $$res\n" : "failed\n";
}
elsif ($cmd eq 'bg') {
    my ($func, $arg, $prio, $uniq) = @args;
    my $handle = client()->dispatch_background($func, $arg, opts($prio, $uniq));
    print defined $handle ? "handle $handle\n" : "failed\n";
}
elsif ($cmd eq 'status') {
    my ($handle) = @args;
    my $st = client()->get_status($handle);
    if ($st) {
        my ($num, $den) = @{ $st->progress || [0, 0] };
        printf "status %d %d %d %d\n", $st->known ? 1 : 0, $st->running ? 1 : 0, $num, $den;
    }
    else {
        print "status unknown\n";
    }
}
elsif ($cmd eq 'server_status') {
    my $all = client()->get_job_server_status();
    for my $js (sort keys %$all) {
        for my $f (sort keys %{ $all->{$js} }) {
            my $s = $all->{$js}{$f};
            print "func $f $s->{queued} $s->{running} $s->{capable}\n";
        }
    }
    print "end\n";
}
else {
    die "unknown command $cmd\n";
}
