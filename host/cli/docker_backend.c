#include "backend.h"
const cli_backend cli_docker_backend = {.name = "docker", .up = cli_local_up};
