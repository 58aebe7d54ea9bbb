#!/usr/bin/python3
"""nfs-failover lab writer (runs on the client guest).

writer.py DATA ACK STOP: appends numbered records "N CLIENT_TIME" to DATA
(on the NFS mount), fsync after each; once fsync returned, appends the same
"N CLIENT_TIME" to ACK (local disk) and fsyncs it. A record is acknowledged
only when it is in ACK. Stops when the file STOP exists. Resumes after the
last acknowledged number if ACK already holds some. On an I/O error (a hard
mount should not give any) it logs, reopens DATA and writes the same number
again (a duplicate in DATA is harmless; a missing acknowledged one is not).
"""
import os
import sys
import time


def last_ack(path):
    n = 0
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if parts and parts[0].isdigit():
                    n = int(parts[0])
    except FileNotFoundError:
        pass
    return n


def main():
    data, ack, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    n = last_ack(ack) + 1
    afd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    dfd = None
    while not os.path.exists(stop):
        try:
            if dfd is None:
                dfd = os.open(data, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(dfd, ("%d %.3f\n" % (n, time.time())).encode())
            os.fsync(dfd)
        except OSError as e:
            sys.stderr.write("%.3f record %d: %s\n" % (time.time(), n, e))
            sys.stderr.flush()
            if dfd is not None:
                try:
                    os.close(dfd)
                except OSError:
                    pass
                dfd = None
            time.sleep(1)
            continue
        os.write(afd, ("%d %.3f\n" % (n, time.time())).encode())
        os.fsync(afd)
        n += 1
        time.sleep(interval)
    if dfd is not None:
        os.close(dfd)
    os.close(afd)


if __name__ == "__main__":
    main()
