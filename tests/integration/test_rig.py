#!/usr/bin/python3
"""Rig self-test: ot->it works, it->ot is dropped (and counted), the
configured random loss and bursts are measured within tolerance, and the rig
comes down cleanly."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sl_rig  # noqa: E402

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udp_tool.py")
PORT = 7499


def transfer(procs, src, dst_addr, count, silence=1.0):
    """Send count datagrams from side src to dst_addr; return how many the
    receiver on the other side saw."""
    dst = "it" if src == "ot" else "ot"
    rx = procs.start(dst, [sl_rig.PY, TOOL, "recv", dst_addr, str(PORT), str(silence)],
                     stdout=subprocess.PIPE, text=True)
    if rx.stdout.readline().strip() != "ready":
        sl_rig.fail("receiver did not start")
    tx = procs.start(src, [sl_rig.PY, TOOL, "send", dst_addr, str(PORT), str(count)],
                     stdout=subprocess.DEVNULL)
    if tx.wait(60) != 0:
        sl_rig.fail("sender failed")
    out, _ = rx.communicate(timeout=30)
    got, late = (int(x) for x in out.split())
    transfer.late = late
    return got


def main():
    n = 4000
    with sl_rig.rig_up():
        with sl_rig.Procs() as procs:
            got = transfer(procs, "ot", sl_rig.IT_ADDR, n)
            print("ot->it clean: %d/%d" % (got, n))
            if got != n:
                sl_rig.fail("clean ot->it lost datagrams: %d/%d" % (got, n))

            before = sl_rig.counter("it", "it_tx_udp_drop")
            back = transfer(procs, "it", sl_rig.OT_ADDR, 500, silence=0.5)
            after = sl_rig.counter("it", "it_tx_udp_drop")
            print("it->ot: %d arrived, drop counter +%d" % (back, after - before))
            if back != 0:
                sl_rig.fail("the return path is open: %d datagrams reached ot" % back)
            if after - before < 500:
                sl_rig.fail("it egress drop counter moved by %d, want >= 500"
                            % (after - before))

            sl_rig.rig("set", "--loss", "10")
            got = transfer(procs, "ot", sl_rig.IT_ADDR, n)
            lost = sl_rig.counter("ot", "ot_loss_drop")
            rate = 1 - got / n
            print("10%% loss: %d/%d arrived (%.2f%% lost, nft counted %d)"
                  % (got, n, 100 * rate, lost))
            # Binomial sd at n=4000, p=0.1 is 0.47 %; allow about 6 sd.
            if not 0.07 <= rate <= 0.13:
                sl_rig.fail("measured loss %.3f outside 0.07..0.13" % rate)
            # The nft counter explains the loss (a few receive-buffer drops on a
            # loaded machine are tolerated).
            if not lost <= n - got <= lost + n // 100:
                sl_rig.fail("nft loss counter %d does not explain %d missing" % (lost, n - got))

            sl_rig.rig("set", "--burst", "50", "--burst-every", "1000")
            got = transfer(procs, "ot", sl_rig.IT_ADDR, n)
            print("bursts of 50 per 1000: %d/%d arrived" % (got, n))
            if got != n - 4 * 50:
                sl_rig.fail("burst loss: got %d, want exactly %d" % (got, n - 200))

            sl_rig.rig("set", "--reorder", "5")
            got = transfer(procs, "ot", sl_rig.IT_ADDR, n)
            print("5%% reorder: %d/%d arrived, %d late" % (got, n, transfer.late))
            if got < n * 0.99 or transfer.late < n * 0.01:
                sl_rig.fail("reorder: %d arrived, %d late; want ~all, >= 1%% late"
                            % (got, transfer.late))
        print(sl_rig.rig("status"))
    if subprocess.run([sl_rig.RIG, "status"], capture_output=True).returncode == 0:
        sl_rig.fail("rig still up after down")
    print("PASS")


if __name__ == "__main__":
    main()
