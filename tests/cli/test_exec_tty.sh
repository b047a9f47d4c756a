#!/usr/bin/env bash
# test_exec_tty.sh — terminals through the CLI on the local backend, driven
# from a pty pair (tests/cli/pty_drive.py) as a user at a terminal: -it
# gets a /dev/pts device of our size, resized with us; Ctrl-C and Ctrl-Z
# act on the remote command through its pty; our terminal's mode comes
# back on every exit path; `sbx shell` is an interactive login shell.
set -u
DRIVE="python3 $(dirname "$0")/pty_drive.py"

PREFIX=tty
. "$(dirname "$0")/lib.sh"

up_box
export SBX DRIVE WORK

t it_is_a_pts_of_our_size bash -c '$DRIVE --rows 33 --cols 101 --check-mode -- "$SBX" exec -it box -- sh -c "tty; stty size" > "$WORK/o1" && grep -q "^/dev/pts/[0-9]" "$WORK/o1" && grep -q "^33 101" "$WORK/o1"'
t t_alone_is_a_tty bash -c '[ "$("$SBX" exec -t box -- sh -c "test -t 0 && test -t 1 && test -t 2 && echo yes" | tr -d "\r")" = yes ]'
t no_t_no_tty bash -c '[ "$("$SBX" exec box -- sh -c "test -t 1 || echo no")" = no ]'
t ctrl_c_interrupts bash -c 's=$(date +%s); $DRIVE --check-mode --wait ready --send "0.3:\x03" -- "$SBX" exec -it box -- sh -c "echo ready; exec sleep 100" >/dev/null; rc=$?; [ $rc -eq 130 ] && [ $(( $(date +%s) - s )) -lt 15 ]'
t sigwinch_resizes bash -c '$DRIVE --check-mode --wait ready --resize 0.3:40:120 -- "$SBX" exec -it box -- sh -c "trap \"stty size; exit 0\" WINCH; echo ready; while :; do sleep 0.1; done" > "$WORK/o2" && grep -q "^40 120" "$WORK/o2"'
t mode_restored_after_exit bash -c '$DRIVE --check-mode -- "$SBX" exec -it box -- sh -c "exit 6"; [ $? -eq 6 ]'
t mode_restored_not_found bash -c '$DRIVE --check-mode -- "$SBX" exec -it box -- no-such-cmd >/dev/null; [ $? -eq 127 ]'
t mode_restored_second_signal bash -c '$DRIVE --check-mode --kill 1:15 --kill 1.5:15 -- "$SBX" exec -it box -- sh -c "trap \"\" TERM; sleep 100" >/dev/null; [ $? -eq 143 ]'
t mode_restored_fatal_signal bash -c '$DRIVE --check-mode --kill 1:3 -- "$SBX" exec -it box -- sleep 100 >/dev/null; [ $? -eq 131 ]'
t mode_restored_bad_sandbox bash -c '$DRIVE --check-mode -- "$SBX" exec -it nope -- true >/dev/null; [ $? -eq 125 ]'
t shell_runs_and_exits_with_status bash -c '$DRIVE --check-mode --send "1:echo hi-\$((6*7))\n" --send "1.5:exit 3\n" -- "$SBX" shell box > "$WORK/o3"; [ $? -eq 3 ] && grep -q "^hi-42" "$WORK/o3"'
t shell_as_user bash -c '$DRIVE --check-mode --send "1:id -u; exit 5\n" -- "$SBX" shell box -u nobody > "$WORK/o4"; [ $? -eq 5 ] && grep -q "^65534" "$WORK/o4"'
t shell_ctrl_z_stops_job bash -c '$DRIVE --check-mode --send "1:sleep 100\n" --send "2:\x1a" --send "2.5:kill -9 %1; sleep 0.3\n" --send "3.5:exit 0\n" --send "4:exit 0\n" -- "$SBX" shell box > "$WORK/o5"; [ $? -eq 0 ] && grep -q "Stopped" "$WORK/o5"'
t shell_from_a_pipe bash -c 'out=$(echo "echo piped; exit 4" | "$SBX" shell box); rc=$?; [ "$out" = piped ] && [ $rc = 4 ]'
t piped_stdin_ends_with_eof_key bash -c 'out=$(printf "a\nb\n" | timeout 20 "$SBX" exec -it box -- wc -l | tr -d "\r "); [ "$(echo "$out" | tail -1)" = 2 ]'
t i_streams_stdin bash -c '[ "$(printf "a\nb\n" | "$SBX" exec -i box -- wc -l)" = 2 ]'
t t_with_seconds_points_to_timeout bash -c '"$SBX" exec -t 5 box -- true 2>"$WORK/e"; [ $? -eq 2 ] && grep -q -- "--timeout 5" "$WORK/e"'
t t_with_json_refused bash -c '"$SBX" exec -t --json box -- true 2>/dev/null; [ $? -eq 2 ]'
