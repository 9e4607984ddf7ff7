/*
 * A payload for `portrange vm -- PROGRAM`: provokes one kernel fault through
 * LKDTM (CONFIG_LKDTM) by writing its name (BUG, SPINLOCKUP, ARRAY_BOUNDS,
 * ...) to provoke-crash/DIRECT in debugfs, which it mounts first.
 * portrange/tests/gki_traits.rs builds it static with gcc.
 *
 * Exit status: 0 when the write returned (the kernel lived through it),
 * 1 when debugfs or LKDTM's file could not be used, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define DEBUGFS "/sys/kernel/debug"
#define DIRECT DEBUGFS "/provoke-crash/DIRECT"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CRASHTYPE\n", argv[0]);
		return 2;
	}
	if (mount("debugfs", DEBUGFS, "debugfs", 0, NULL) != 0 && errno != EBUSY) {
		fprintf(stderr, "mounting debugfs on %s: %s\n", DEBUGFS, strerror(errno));
		return 1;
	}
	int fd = open(DIRECT, O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "opening %s: %s (is CONFIG_LKDTM set?)\n", DIRECT, strerror(errno));
		return 1;
	}
	ssize_t written = write(fd, argv[1], strlen(argv[1]));
	if (written < 0) {
		fprintf(stderr, "writing %s to %s: %s\n", argv[1], DIRECT, strerror(errno));
		return 1;
	}
	printf("provoked %s, and the kernel lived on\n", argv[1]);
	return 0;
}
