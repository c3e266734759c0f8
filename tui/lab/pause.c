/* nodedoc lab sandbox process: sleep until SIGTERM or SIGINT, like the real pause image. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void leave(int sig) { (void)sig; _exit(0); }

int main(void) {
    signal(SIGTERM, leave);
    signal(SIGINT, leave);
    for (;;)
        pause();
    return 0;
}
