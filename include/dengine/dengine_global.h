// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <QtCore/qglobal.h>

#if defined(DENGINE_STATIC)
#define DENGINE_EXPORT
#elif defined(DENGINE_BUILDING_LIBRARY)
#define DENGINE_EXPORT Q_DECL_EXPORT
#else
#define DENGINE_EXPORT Q_DECL_IMPORT
#endif

// A node of a DEngine cluster. 0 means "no node" (for example: no leader known).
using NodeId = quint64;
