#pragma once
// The whole public API of distrib.
#include "distrib/array.hpp"
#include "distrib/bytes.hpp"
#include "distrib/client.hpp"
#include "distrib/codec.hpp"
#include "distrib/errors.hpp"
#include "distrib/future.hpp"
#include "distrib/local_cluster.hpp"
#include "distrib/ndarray.hpp"
#include "distrib/progress.hpp"
#include "distrib/wait.hpp"
#include "distrib/graph.hpp"
#include "distrib/task.hpp"
